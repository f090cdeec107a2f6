"""The project's database, opened the same way for every store in it (outbox, pull cursors,
protocol library, …): ``open_store`` gives the embedded SQLite database described here, or the
shared PostgreSQL database (``postgres``) when ``FHIR_MIGRAINE_DB`` is a ``postgresql://`` URL;
both take the same portable SQL (``?``/``:name`` placeholders, ``ON CONFLICT`` upserts).

- WAL journal, so readers never wait for the writer and gunicorn's worker processes share the file;
- ``synchronous=FULL``: a write that returned survives a power cut (an accepted item is never lost);
- a 30 s busy timeout, so a process waits for another's write instead of failing;
- autocommit, with ``transaction()`` (``BEGIN IMMEDIATE``) for read-modify-write sequences, which
  takes the write lock up front and so cannot deadlock on an upgrade;
- writers queue at a gate before they ask SQLite for its write lock: a lock on the
  ``<database>-lock`` file (``flock``), shared by every store, thread and process of the database.
  The kernel hands it to the next writer the moment it is free, where SQLite's own busy handler
  polls with sleeps of up to 100 ms: under many concurrent requests that polling, not the work,
  made the slowest answers. Readers never wait at the gate (WAL);
- one connection per store object, shared by its threads behind a lock. Open stores after a fork
  (gunicorn workers build their own app), never before: a connection must not cross a fork;
- private at rest, whatever the umask: the database's folder 0700 (when this user owns it), the
  database and its ``-wal`` and ``-shm`` files 0600 (SQLite gives those the database file's
  mode), tightened when an existing one is opened; ``secure_delete``, so the content of purged
  Bundles is overwritten rather than left in free pages.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

MEMORY = ":memory:"


def iso_utc(seconds: float) -> str:
    """A time the stores keep as seconds since the epoch, as the answers show it (UTC, to the second)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Any: ...


class Connection(Protocol):
    """What ``transaction()`` yields on either database."""

    def execute(self, sql: str, params: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, rows: Any, /) -> Any: ...


class Database(Protocol):
    """The interface every store uses, on SQLite (``Store``) or PostgreSQL (``postgres.PostgresStore``)."""

    postgres: bool
    lock: str
    database: str

    def one(self, sql: str, params: Any = ...) -> tuple[Any, ...] | None: ...

    def all(self, sql: str, params: Any = ...) -> list[tuple[Any, ...]]: ...

    def write(self, sql: str, params: Any = ...) -> int: ...

    def transaction(self) -> AbstractContextManager[Connection, bool | None]: ...

    def checkpoint(self) -> bool: ...

    def close(self) -> None: ...
BUSY_TIMEOUT_S = 30.0
FOLDER_MODE = 0o700
FILE_MODE = 0o600
COMPANIONS = ("-wal", "-shm", "-journal", "-lock")


def _tighten(path: Path, mode: int) -> None:
    """Give ``path`` exactly ``mode`` when this user owns it (another's folder, such as /tmp,
    cannot be changed and is left as it is)."""
    found = path.stat()
    if found.st_uid == os.getuid() and stat.S_IMODE(found.st_mode) != mode:
        path.chmod(mode)


def make_private(database: str) -> None:
    """Create the database's folder and file if needed, owner-only (see the module doc)."""
    file = Path(database)
    file.parent.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    _tighten(file.parent, FOLDER_MODE)
    # Created here, before SQLite opens it: SQLite gives -wal and -shm this file's mode.
    os.close(os.open(file, os.O_RDWR | os.O_CREAT, FILE_MODE))
    _tighten(file, FILE_MODE)
    for suffix in COMPANIONS:
        companion = file.with_name(file.name + suffix)
        if companion.exists():
            _tighten(companion, FILE_MODE)


class _Gate:
    """The write gate of one database in this process: a re-entrant lock of its threads, and the
    ``flock`` of the ``-lock`` file between processes (taken by the outermost holder only)."""

    def __init__(self, database: str) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._fd = os.open(database + "-lock", os.O_RDWR | os.O_CREAT, FILE_MODE)

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                fcntl.flock(self._fd, fcntl.LOCK_EX)  # blocks without the GIL until it is free
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)


_gates: dict[tuple[int, str], _Gate] = {}
_gates_lock = threading.Lock()


def _gate(database: str) -> _Gate:
    """The gate of ``database`` in this process (a gate made before a fork is not reused after it)."""
    key = (os.getpid(), os.path.realpath(database))
    with _gates_lock:
        if key not in _gates:
            _gates[key] = _Gate(database)
        return _gates[key]


class _NoGate:
    @contextmanager
    def held(self) -> Iterator[None]:
        yield


class Store:
    """One SQLite connection with the project's pragmas and ``schema`` created (idempotently)."""

    #: What the stores ask of the database they run on: not PostgreSQL, and no row locks (SQLite
    #: has one writer at a time: a read in ``transaction()`` already sees what it will write over).
    postgres = False
    lock = ""

    def __init__(self, database: str, schema: str) -> None:
        if database != MEMORY:
            make_private(database)
        self.database = database
        self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        self._lock = threading.RLock()
        self._gate: _Gate | _NoGate = _gate(database) if database != MEMORY else _NoGate()
        with self._gate.held(), self._lock:
            if database != MEMORY:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            self._db.executescript(schema)
        if database != MEMORY:
            make_private(database)  # the -wal and -shm files now exist

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
        with self._gate.held(), self._lock:
            return self._db.execute(sql, params).rowcount

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside ``BEGIN IMMEDIATE``: committed on leaving, rolled back on any error.
        The gate is taken before this store's own lock, so a writer waiting at the gate never
        holds up a reader of this store."""
        with self._gate.held(), self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and empty it, so earlier versions of changed pages (the
        content a purge removed) do not linger in the WAL; whether it completed (a reader still
        in an older snapshot makes it wait for a later one)."""
        if self.database == MEMORY:
            return True
        with self._gate.held(), self._lock:
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return busy == 0

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(database: str, schema: str) -> Database:
    """The store of ``database``: SQLite (a file path, or ``:memory:``) with ``schema`` created,
    or PostgreSQL (a ``postgresql://`` URL) with its migrations applied."""
    from fhir_migraine import postgres

    if postgres.is_postgres(database):
        return postgres.PostgresStore(database, schema)
    return Store(database, schema)
