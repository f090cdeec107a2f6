"""PostgreSQL as the shared store of several service instances (``FHIR_MIGRAINE_DB=postgresql://…``).

The same interface as the embedded SQLite store (``store.Store``): ``one``, ``all``, ``write`` and
``transaction()``, whose connection's ``execute`` takes the project's portable SQL (``?`` or
``:name`` placeholders, ``ON CONFLICT`` upserts). What differs is said by two attributes the stores
read: ``postgres`` (True here) and ``lock`` (`` FOR UPDATE``: a read-modify-write in a transaction
locks the row it reads, where SQLite's single writer made that unnecessary).

- One connection pool per database URL and process (made after a fork, like SQLite's
  connections), checked before it is lent, so a restarted PostgreSQL is reconnected to.
- Transactions run at READ COMMITTED; work is shared with ``FOR UPDATE SKIP LOCKED`` and leases
  (the outbox, the import jobs), never a global lock.
- The schema is the numbered SQL files in ``migrations/``, applied in order when a process first
  opens the database, under an advisory lock so instances starting together apply each once;
  ``schema_migrations`` records what was applied. A database newer than this release (a version
  it does not know) is refused rather than written to.
- A database that cannot be reached is a ``StoreUnavailable`` (503), never a crash.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from fhir_migraine.errors import ConfigError, StoreUnavailable

SCHEMES = ("postgresql://", "postgres://")
POOL_SIZE = 8
CONNECT_TIMEOUT_S = 10.0
#: The advisory lock key of schema migrations (any constant the project does not use otherwise).
MIGRATION_LOCK = 0x6D696772  # "migr"

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def is_postgres(database: str) -> bool:
    return database.startswith(SCHEMES)


@lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """The project's portable SQL in psycopg's placeholder style: ``?`` -> ``%s``, ``:name`` ->
    ``%(name)s``, a literal ``%`` doubled."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%").replace("?", "%s"))


def migrations() -> list[tuple[int, str, str]]:
    """The numbered migrations shipped in the package: (version, name, SQL), in order."""
    found = []
    for entry in resources.files("fhir_migraine.migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(conn: psycopg.Connection[Any], up_to: int | None = None) -> list[int]:
    """Apply the migrations the database lacks (up to ``up_to``), each in its own transaction,
    under the migration lock; the versions applied."""
    applied: list[int] = []
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        with conn.transaction():
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
        have = {row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}
        known = migrations()
        unknown = sorted(have - {version for version, _, _ in known})
        if unknown:
            raise ConfigError(f"FHIR_MIGRAINE_DB: the database has schema version {unknown[-1]}, newer than this "
                              f"release knows ({known[-1][0] if known else 0}); upgrade the service.")
        for version, name, sql in known:
            if version in have or (up_to is not None and version > up_to):
                continue
            with conn.transaction():
                conn.execute(sql.encode())  # several statements, no parameters
                conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                             (version, name, time.time()))
            applied.append(version)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied


class _Tx:
    """A connection inside a transaction, taking the project's portable SQL."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> psycopg.Cursor[Any]:
        return self._conn.execute(to_postgres(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(to_postgres(sql), rows)


class _Pool:
    """The connection pool of one database in this process, the schema brought up to date once."""

    def __init__(self, url: str) -> None:
        self.pool = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=False, check=ConnectionPool.check_connection,
                                   kwargs={"connect_timeout": int(CONNECT_TIMEOUT_S)}, name="fhir-migraine")
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            with self.pool.connection() as conn:
                conn.autocommit = True
                migrate(conn)
                conn.autocommit = False
        except (PoolTimeout, psycopg.OperationalError) as error:
            self.pool.close()
            raise StoreUnavailable(f"The database (FHIR_MIGRAINE_DB) cannot be reached: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    """The cause of a connection failure without the URL (it may carry a password)."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


_pools: dict[tuple[int, str], _Pool] = {}
_pools_lock = threading.Lock()


def _pool(url: str) -> ConnectionPool:
    key = (os.getpid(), url)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = _Pool(url)
        return _pools[key].pool


def close_pools() -> None:
    """Close this process's pools (a worker that exits, a test that drops its database)."""
    with _pools_lock:
        for (pid, _), found in list(_pools.items()):
            if pid == os.getpid():
                found.pool.close()
        _pools.clear()


class PostgresStore:
    """The stores' interface on a shared PostgreSQL database (``schema`` is the SQLite form, unused:
    the migrations make the tables)."""

    postgres = True
    lock = " FOR UPDATE"

    def __init__(self, database: str, schema: str = "") -> None:
        self.database = database
        self._pool = _pool(database)

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        """A connection inside a READ COMMITTED transaction: committed on leaving, rolled back on any error."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield _Tx(conn)
        except (PoolTimeout, psycopg.OperationalError) as error:
            raise StoreUnavailable(f"The database is unavailable: {_reason(error)}") from None

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> tuple[Any, ...] | None:
        with self.transaction() as db:
            row = db.execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        with self.transaction() as db:
            return [tuple(r) for r in db.execute(sql, params).fetchall()]

    def write(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        with self.transaction() as db:
            return db.execute(sql, params).rowcount

    def checkpoint(self) -> bool:
        """Nothing to do: PostgreSQL's own checkpoints and autovacuum reclaim purged content."""
        return True

    def close(self) -> None:
        """The pool is shared by the stores of this process; ``close_pools`` closes it."""
