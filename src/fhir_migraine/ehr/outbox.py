"""The durable outbox: transaction Bundles waiting to reach the EHR, in SQLite.

An item is stored before its request is acknowledged. A worker claims it with a lease, sends
its parts in order (recording each part as it is sent), and marks it ``sent``; a retryable
failure puts it back as ``pending`` with a later ``next_attempt_at``; a rejection moves it to
``dead`` with the EHR's OperationOutcome. An item whose worker died (its lease ran out) is
claimed again: sending a part twice is harmless, because every entry is a conditional create.

    pending --claim--> sending --all parts sent--> sent
       ^                  |
       +---retryable------+--rejected--> dead
       +---released (worker stopping between parts)
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_migraine.store import Store

STATES = ("pending", "sending", "sent", "dead")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    parts TEXT NOT NULL,
    part_count INTEGER NOT NULL,
    resource_count INTEGER NOT NULL,
    next_part INTEGER NOT NULL DEFAULT 0,
    responses TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_until REAL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
"""


@dataclass(frozen=True)
class Item:
    """One outbox item as stored."""

    id: str
    kind: str
    state: str
    parts: list[dict[str, Any]]
    part_count: int
    resource_count: int
    next_part: int
    responses: list[dict[str, Any]]
    attempts: int
    next_attempt_at: float
    last_error: dict[str, Any] | None
    created_at: float
    updated_at: float

    def summary(self) -> dict[str, Any]:
        """What ``GET /outbox/{id}`` shows: state and progress, the EHR's answers and last error."""
        found: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "attempts": self.attempts,
            "parts": self.part_count,
            "parts_sent": self.next_part,
            "resources": self.resource_count,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }
        if self.state == "pending" and self.attempts:
            found["next_attempt_at"] = _iso(self.next_attempt_at)
        if self.last_error:
            found["last_error"] = self.last_error
        if self.responses:
            found["responses"] = self.responses
        return found


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class Outbox:
    """The outbox table; safe to share between threads and between processes."""

    def __init__(self, database: str, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._store = Store(database, _SCHEMA)

    def _row(self, row: tuple[Any, ...] | None) -> Item | None:
        if row is None:
            return None
        (id_, kind, state, parts, part_count, resource_count, next_part, responses, attempts,
         next_attempt_at, _lease, last_error, created_at, updated_at) = row
        return Item(
            id_, kind, state, json.loads(parts), part_count, resource_count, next_part, json.loads(responses),
            attempts, next_attempt_at, json.loads(last_error) if last_error else None, created_at, updated_at,
        )

    def add(self, kind: str, parts: list[dict[str, Any]]) -> str:
        """Store a new item (committed when this returns); its id."""
        item_id = str(uuid.uuid4())
        now = self.clock()
        count = sum(len(p.get("entry", [])) for p in parts)
        self._store.write(
            "INSERT INTO outbox (id, kind, state, parts, part_count, resource_count, next_attempt_at, created_at, updated_at)"
            " VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
            (item_id, kind, json.dumps(parts, ensure_ascii=False), len(parts), count, now, now, now),
        )
        return item_id

    def get(self, item_id: str) -> Item | None:
        return self._row(self._store.one("SELECT * FROM outbox WHERE id = ?", (item_id,)))

    def list(self, state: str | None = None, limit: int = 100) -> list[Item]:
        query = "SELECT * FROM outbox" + (" WHERE state = ?" if state else "") + " ORDER BY created_at LIMIT ?"
        args: tuple[Any, ...] = (state, limit) if state else (limit,)
        return [i for r in self._store.all(query, args) if (i := self._row(r))]

    def counts(self) -> dict[str, int]:
        rows = self._store.all("SELECT state, count(*) FROM outbox GROUP BY state")
        return {state: 0 for state in STATES} | {state: n for state, n in rows}

    def claim(self, lease: float, only: str | None = None) -> Item | None:
        """Take the oldest due item (or one whose lease ran out) for ``lease`` seconds."""
        now = self.clock()
        query = (
            "SELECT id FROM outbox WHERE ((state = 'pending' AND next_attempt_at <= ?)"
            " OR (state = 'sending' AND lease_until < ?))"
            + (" AND id = ?" if only else "")
            + " ORDER BY next_attempt_at LIMIT 1"
        )
        args: tuple[Any, ...] = (now, now, only) if only else (now, now)
        with self._store.transaction() as db:
            row = db.execute(query, args).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE outbox SET state = 'sending', lease_until = ?, attempts = attempts + 1, updated_at = ?"
                " WHERE id = ?",
                (now + lease, now, row[0]),
            )
        return self.get(row[0])

    def part_sent(self, item_id: str, response: dict[str, Any], lease: float) -> None:
        """Record one part as sent (and keep the lease)."""
        now = self.clock()
        with self._store.transaction() as db:
            responses = json.loads(db.execute("SELECT responses FROM outbox WHERE id = ?", (item_id,)).fetchone()[0])
            responses.append(response)
            db.execute(
                "UPDATE outbox SET next_part = next_part + 1, responses = ?, lease_until = ?, updated_at = ? WHERE id = ?",
                (json.dumps(responses, ensure_ascii=False), now + lease, now, item_id),
            )

    def release(self, item_id: str) -> None:
        """Give a claimed item back, due now (its worker is stopping between two parts)."""
        self._set(item_id, "pending", self.clock(), None)

    def finish(self, item_id: str) -> None:
        self._set(item_id, "sent", None, None)

    def retry(self, item_id: str, delay: float, error: dict[str, Any]) -> None:
        self._set(item_id, "pending", self.clock() + delay, error)

    def bury(self, item_id: str, error: dict[str, Any]) -> None:
        self._set(item_id, "dead", None, error)

    def _set(self, item_id: str, state: str, next_attempt_at: float | None, error: dict[str, Any] | None) -> None:
        now = self.clock()
        self._store.write(
            "UPDATE outbox SET state = ?, next_attempt_at = COALESCE(?, next_attempt_at), lease_until = NULL,"
            " last_error = COALESCE(?, last_error), updated_at = ? WHERE id = ?",
            (state, next_attempt_at, json.dumps(error) if error else None, now, item_id),
        )
