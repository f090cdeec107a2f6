"""What this service has written to each EHR, by business identifier: the server's id and version
of the resource and a digest of the content sent (with one per top-level element).

It gives the write strategies what a real EHR may not: the id of a resource carrying an identifier
where the EHR has neither conditional create nor identifier search; the version an update is
guarded by (``If-Match``); whether content re-sent under the same identifier changed, and which
elements (an amendment). It holds identifiers and hashes, never clinical content.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from fhir_migraine.store import open_store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ehr_resources (
    ehr TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    identifier TEXT NOT NULL,
    id TEXT NOT NULL,
    version TEXT,
    digest TEXT NOT NULL,
    elements TEXT NOT NULL,
    written_at REAL NOT NULL,
    PRIMARY KEY (ehr, resource_type, identifier)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Known:
    """One resource as last written: its id and version in the EHR, the digest of the content sent
    and of each top-level element."""

    id: str
    version: str | None
    digest: str
    elements: dict[str, str]


class KnownResources:
    """The ``ehr_resources`` table of the service's database; safe to share between threads and processes."""

    def __init__(self, database: str, ehr: str) -> None:
        self.ehr = ehr
        self._store = open_store(database, _SCHEMA)

    def get(self, resource_type: str, identifier: str) -> Known | None:
        row = self._store.one(
            "SELECT id, version, digest, elements FROM ehr_resources WHERE ehr = ? AND resource_type = ? AND identifier = ?",
            (self.ehr, resource_type, identifier))
        return None if row is None else Known(row[0], row[1], row[2], json.loads(row[3]))

    def put(self, resource_type: str, identifier: str, known: Known) -> None:
        self._store.write(
            "INSERT INTO ehr_resources (ehr, resource_type, identifier, id, version, digest, elements, written_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ehr, resource_type, identifier) DO UPDATE SET"
            " id = excluded.id, version = excluded.version, digest = excluded.digest, elements = excluded.elements,"
            " written_at = excluded.written_at",
            (self.ehr, resource_type, identifier, known.id, known.version, known.digest,
             json.dumps(known.elements, sort_keys=True), time.time()))

    def forget(self, resource_type: str, identifier: str) -> None:
        self._store.write("DELETE FROM ehr_resources WHERE ehr = ? AND resource_type = ? AND identifier = ?",
                          (self.ehr, resource_type, identifier))
