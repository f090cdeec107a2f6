"""The protocol library: protocol files on disk, and the SQLite table the service keeps them in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from fhir_migraine import shipped
from fhir_migraine.errors import InputError, NotFound, Problem
from fhir_migraine.inputs import protocols
from fhir_migraine.inputs.protocols import Protocol
from fhir_migraine.store import Store

PROTOCOL_SUFFIXES = (".yaml", ".yml", ".json")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS protocols (
    id TEXT PRIMARY KEY, version TEXT NOT NULL, document TEXT NOT NULL, updated_at TEXT NOT NULL
);
"""


def read_protocol_file(path: Traversable) -> Protocol:
    """A protocol from a YAML or JSON file; problems are prefixed with the file name."""
    try:
        return protocols.load_text(path.read_text(encoding="utf-8"))
    except InputError as exc:
        raise InputError(f"{path.name}: {exc.message}", exc.problems) from None
    except UnicodeDecodeError:
        raise InputError.of([Problem("$", f"{path.name} is not UTF-8 text")], "protocol") from None


def protocol_files(path: Traversable) -> list[Traversable]:
    if path.is_dir():
        found = [p for p in path.iterdir() if p.is_file() and p.name.endswith(PROTOCOL_SUFFIXES)]
        return sorted(found, key=lambda p: p.name)
    return [path]


def read_protocols(path: Traversable) -> dict[str, Protocol]:
    """Every protocol of a file or of a folder's ``*.yaml``/``*.json`` files, by id."""
    found: dict[str, Protocol] = {}
    for file in protocol_files(path):
        protocol = read_protocol_file(file)
        if protocol.id in found:
            raise InputError.of([Problem("$.id", f"protocol id {protocol.id!r} appears twice in {path}")], "protocol")
        found[protocol.id] = protocol
    return found


class ProtocolStore:
    """Protocols in an SQLite database, seeded when the table is empty from a folder, or
    without one from the example protocols shipped inside the package."""

    def __init__(self, database: str, *, seed: str | None = None) -> None:
        self._store = Store(database, _SCHEMA)
        self._lock = threading.Lock()  # guards the parsed-protocol cache
        self._cache: dict[tuple[str, str], Protocol] = {}
        if self._count() == 0:
            folder = Path(seed) if seed else shipped.seed_protocols_folder()
            for protocol in read_protocols(folder).values():
                self.put(protocol.id, protocol.document, only_if_absent=True)

    def _count(self) -> int:
        row = self._store.one("SELECT count(*) FROM protocols")
        return int(row[0]) if row else 0

    def get(self, protocol_id: str) -> Protocol | None:
        row = self._store.one("SELECT document FROM protocols WHERE id = ?", (protocol_id,))
        if row is None:
            return None
        key = (protocol_id, row[0])
        with self._lock:
            if key not in self._cache:
                self._cache[key] = protocols.load(json.loads(row[0]))
            return self._cache[key]

    def require(self, protocol_id: str) -> Protocol:
        protocol = self.get(protocol_id)
        if protocol is None:
            raise NotFound(f"No protocol {protocol_id!r} in the library.")
        return protocol

    def summaries(self) -> Iterator[dict[str, Any]]:
        for (document,) in self._store.all("SELECT document FROM protocols ORDER BY id"):
            doc = json.loads(document)
            yield {k: doc[k] for k in ("id", "version", "title", "intent")}

    def put(self, protocol_id: str, document: Any, *, only_if_absent: bool = False) -> tuple[Protocol, bool]:
        """Check and store a protocol under ``protocol_id``; returns it and whether it is new."""
        protocol = protocols.load(document)
        if protocol.id != protocol_id:
            raise InputError.of([Problem("$.id", f"is {protocol.id!r} but the URL names {protocol_id!r}")], "protocol")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        text = json.dumps(document, ensure_ascii=False, sort_keys=True)
        # One transaction: two processes seeding or putting at once see one consistent answer.
        with self._store.transaction() as db:
            created = db.execute("SELECT 1 FROM protocols WHERE id = ?", (protocol_id,)).fetchone() is None
            if only_if_absent and not created:
                return protocol, False
            db.execute(
                "INSERT INTO protocols (id, version, document, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET version = excluded.version, document = excluded.document, "
                "updated_at = excluded.updated_at",
                (protocol_id, protocol.version, text, now),
            )
        return protocol, created
