"""The project's SQLite database, opened the same way for every store in it (outbox, pull cursors,
protocol library): one place for the pragmas, the locking and the schema.

- WAL journal, so readers never wait for the writer and gunicorn's worker processes share the file;
- ``synchronous=FULL``: a write that returned survives a power cut (an accepted item is never lost);
- a 30 s busy timeout, so a process waits for another's write instead of failing;
- autocommit, with ``transaction()`` (``BEGIN IMMEDIATE``) for read-modify-write sequences, which
  takes the write lock up front and so cannot deadlock on an upgrade;
- one connection per store object, shared by its threads behind a lock. Open stores after a fork
  (gunicorn workers build their own app), never before: a connection must not cross a fork.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MEMORY = ":memory:"
BUSY_TIMEOUT_S = 30.0


class Store:
    """One SQLite connection with the project's pragmas and ``schema`` created (idempotently)."""

    def __init__(self, database: str, schema: str) -> None:
        if database != MEMORY:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        self.database = database
        self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        self._lock = threading.RLock()
        with self._lock:
            if database != MEMORY:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            self._db.executescript(schema)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return [tuple(r) for r in self._db.execute(sql, params).fetchall()]

    def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement, committed when this returns; how many rows it changed."""
        with self._lock:
            return self._db.execute(sql, params).rowcount

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside ``BEGIN IMMEDIATE``: committed on leaving, rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
