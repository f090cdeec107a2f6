"""The protocol library: protocol files on disk, and the SQLite tables the service keeps them in.

A protocol version is immutable: orders point at ``PlanDefinition/<id>|<version>``, so a version
once stored never takes other content (a change needs a new version, else ``Conflict``). Only its
``status`` may move on, forward (draft -> active -> retired): retiring a version changes no dose. Every
change is recorded in ``protocol_history``: who (the caller's token subject), when, the version,
the content hash and the hash it replaced, and the document itself, so any version an order
names can be read back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from fhir_migraine import shipped
from fhir_migraine.errors import Conflict, InputError, NotFound, Problem
from fhir_migraine.inputs import protocols
from fhir_migraine.inputs.protocols import Protocol
from fhir_migraine.store import open_store

log = logging.getLogger(__name__)
PROTOCOL_SUFFIXES = (".yaml", ".yml", ".json")
#: The subject recorded for the protocols an empty library is seeded with.
SEED_SUBJECT = "seed"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS protocols (
    id TEXT PRIMARY KEY, version TEXT NOT NULL, document TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS protocol_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    previous_hash TEXT,
    subject TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS protocol_history_id ON protocol_history (id, seq);
"""


def canonical_text(document: Any) -> str:
    """The stored form of a protocol document: sorted keys, so equal content has equal text."""
    return json.dumps(document, ensure_ascii=False, sort_keys=True)


#: The life of a protocol version: its status only moves forward along these.
STATUS_STEPS = ("draft", "active", "retired")


def _without_status(document: dict[str, Any]) -> str:
    """A version's content apart from its status, the one thing that may change under a version."""
    return canonical_text({k: v for k, v in document.items() if k != "status"})


def content_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_protocol_file(path: Traversable) -> Protocol:
    """A protocol from a YAML or JSON file; problems are prefixed with the file name."""
    try:
        return protocols.load_text(path.read_bytes())
    except InputError as exc:
        # The same class (400 unreadable, 422 invalid), the file named in the message.
        raise type(exc)(f"{path.name}: {exc.message}", exc.problems) from None


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
    """Protocols in the service's database, seeded when the table is empty from a folder, or
    without one from the example protocols shipped inside the package."""

    def __init__(self, database: str, *, seed: str | None = None) -> None:
        self._store = open_store(database, _SCHEMA)
        self._lock = threading.Lock()  # guards the parsed-protocol cache
        self._cache: dict[tuple[str, str], Protocol] = {}
        if self._count() == 0:
            folder = Path(seed) if seed else shipped.seed_protocols_folder()
            for protocol in read_protocols(folder).values():
                self.put(protocol.id, protocol.document, subject=SEED_SUBJECT, only_if_absent=True)

    def _count(self) -> int:
        row = self._store.one("SELECT count(*) FROM protocols")
        return int(row[0]) if row else 0

    def _parsed(self, protocol_id: str, text: str) -> Protocol:
        key = (protocol_id, text)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = protocols.load(json.loads(text))
            return self._cache[key]

    def get(self, protocol_id: str, version: str | None = None) -> Protocol | None:
        """The current protocol, or (``version``) the one stored under that version."""
        if version is None:
            row = self._store.one("SELECT document FROM protocols WHERE id = ?", (protocol_id,))
        else:
            row = self._store.one(
                "SELECT document FROM protocol_history WHERE id = ? AND version = ? ORDER BY seq DESC LIMIT 1",
                (protocol_id, version),
            )
        return self._parsed(protocol_id, row[0]) if row is not None else None

    def require(self, protocol_id: str, version: str | None = None) -> Protocol:
        protocol = self.get(protocol_id, version)
        if protocol is None:
            which = f" version {version!r}" if version is not None else ""
            raise NotFound(f"No protocol {protocol_id!r}{which} in the library.")
        return protocol

    def summaries(self) -> Iterator[dict[str, Any]]:
        for (document,) in self._store.all("SELECT document FROM protocols ORDER BY id"):
            doc = json.loads(document)
            yield {**{k: doc[k] for k in ("id", "version", "title", "intent")}, "status": doc.get("status", "active")}

    def history(self, protocol_id: str) -> list[dict[str, Any]]:
        """Every recorded change of a protocol, oldest first (NotFound when there is none)."""
        rows = self._store.all(
            "SELECT version, content_hash, previous_hash, subject, changed_at FROM protocol_history WHERE id = ? ORDER BY seq",
            (protocol_id,),
        )
        if not rows:
            self.require(protocol_id)  # a protocol stored before changes were recorded has an empty history
        keys = ("version", "content_hash", "previous_hash", "subject", "changed_at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def put(self, protocol_id: str, document: Any, *, subject: str, only_if_absent: bool = False) -> tuple[Protocol, bool]:
        """Check and store a protocol under ``protocol_id`` on behalf of ``subject``; returns it and
        whether it is new. The same content again changes nothing; other content under a version
        already stored is a ``Conflict``, but for its ``status`` moving forward (draft, active,
        retired), which is recorded and leaves the current version as it is."""
        protocol = protocols.load(document)
        if protocol.id != protocol_id:
            raise InputError.of([Problem("$.id", f"is {protocol.id!r} but the URL names {protocol_id!r}")], "protocol")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        text = canonical_text(document)
        digest = content_hash(text)
        # One transaction: two processes seeding or putting at once see one consistent answer.
        with self._store.transaction() as db:
            if self._store.postgres:  # as SQLite's one writer: the check and the writes below as one
                db.execute("SELECT pg_advisory_xact_lock(hashtext('protocol library'))")
            current = db.execute("SELECT document FROM protocols WHERE id = ?", (protocol_id,)).fetchone()
            if current is not None and (only_if_absent or current[0] == text):
                return protocol, False
            current_doc = json.loads(current[0]) if current is not None else None
            is_current = current_doc is not None and current_doc.get("version") == protocol.version
            # This version as stored so far, oldest first (the current row too: it may predate the history).
            rows = db.execute("SELECT document FROM protocol_history WHERE id = ? AND version = ? ORDER BY seq",
                              (protocol_id, protocol.version)).fetchall()
            stored = [json.loads(row[0]) for row in rows] + ([current_doc] if is_current else [])
            if any(_without_status(d) != _without_status(document) for d in stored):
                raise Conflict(
                    f"Version {protocol.version!r} of protocol {protocol_id!r} is already stored with other content; "
                    "orders name a protocol by id and version, so a changed protocol needs a new version.",
                    [Problem("$.version", f"{protocol.version!r} is taken by other content: give the change a new version")],
                )
            latest = stored[-1] if stored else None
            if latest is not None:
                if canonical_text(latest) == text:
                    return protocol, False
                before = latest.get("status", "active")
                if STATUS_STEPS.index(protocol.status) < STATUS_STEPS.index(before):
                    raise Conflict(
                        f"Version {protocol.version!r} of protocol {protocol_id!r} is {before}; a status only moves "
                        f"forward ({' -> '.join(STATUS_STEPS)}), so going back to {protocol.status} needs a new version.",
                        [Problem("$.status", f"cannot go back from {before!r} to {protocol.status!r} under one version")],
                    )
                previous: str | None = content_hash(canonical_text(latest))
            else:
                previous = content_hash(current[0]) if current is not None else None
            if latest is None or is_current:
                # A new version becomes the current one; a status change of an older one does not.
                db.execute(
                    "INSERT INTO protocols (id, version, document, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET version = excluded.version, document = excluded.document, "
                    "updated_at = excluded.updated_at",
                    (protocol_id, protocol.version, text, now),
                )
            db.execute(
                "INSERT INTO protocol_history (id, version, content_hash, previous_hash, subject, changed_at, document)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (protocol_id, protocol.version, digest, previous, subject, now, text),
            )
        log.info("protocol changed", extra={"protocol_id": protocol_id, "version": protocol.version,
                                            "content_hash": digest, "previous_hash": previous})
        return protocol, current is None
