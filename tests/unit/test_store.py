"""The SQLite helper every store uses: its pragmas, idempotent schema, transactions, sharing."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_migraine.ehr.outbox import Outbox
from fhir_migraine.ehr.pull import Cursors
from fhir_migraine.library import ProtocolStore
from fhir_migraine.store import Store

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, n INTEGER NOT NULL);"


def test_a_file_database_gets_wal_full_sync_and_a_busy_timeout(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "sub" / "db.sqlite3"), SCHEMA)
    assert store.one("PRAGMA journal_mode") == ("wal",)
    assert store.one("PRAGMA synchronous") == (2,)  # FULL
    assert store.one("PRAGMA busy_timeout") == (30000,)


def test_opening_again_keeps_the_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite3")
    Store(path, SCHEMA).write("INSERT INTO t VALUES ('a', 1)")
    assert Store(path, SCHEMA).all("SELECT k, n FROM t") == [("a", 1)]


def test_a_failing_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "db.sqlite3"), SCHEMA)
    with pytest.raises(RuntimeError), store.transaction() as db:
        db.execute("INSERT INTO t VALUES ('a', 1)")
        raise RuntimeError("stop")
    assert store.all("SELECT * FROM t") == []
    with store.transaction() as db:
        db.execute("INSERT INTO t VALUES ('b', 2)")
    assert store.all("SELECT k FROM t") == [("b",)]


def test_read_modify_write_from_many_threads_and_connections_loses_no_update(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite3")
    stores = [Store(path, SCHEMA) for _ in range(3)]  # three connections, as three processes would have
    stores[0].write("INSERT INTO t VALUES ('c', 0)")

    def bump(store: Store) -> None:
        for _ in range(50):
            with store.transaction() as db:
                (n,) = db.execute("SELECT n FROM t WHERE k = 'c'").fetchone()
                db.execute("UPDATE t SET n = ? WHERE k = 'c'", (n + 1,))

    threads = [threading.Thread(target=bump, args=(stores[i % 3],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[1].one("SELECT n FROM t WHERE k = 'c'") == (300,)


def test_the_three_stores_share_one_database_file(tmp_path: Path) -> None:
    path = str(tmp_path / "service.sqlite3")
    outbox, cursors, library = Outbox(path), Cursors(path), ProtocolStore(path)
    item = outbox.add("diary", [{"resourceType": "Bundle", "type": "transaction", "entry": []}])
    cursors.set("Patient/1", "2026-11-01T00:00:00Z")
    tables = {name for (name,) in Store(path, "").all("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"outbox", "pull_cursors", "protocols"} <= tables
    assert outbox.get(item) is not None and cursors.get("Patient/1") == "2026-11-01T00:00:00Z"
    assert any(True for _ in library.summaries()), "seeded from the shipped example protocols"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000, 0o002, 0o077, 0o777])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    before = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(before)


def test_the_database_its_wal_and_shm_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "var" / "db.sqlite3"
    store = Store(str(path), SCHEMA)
    store.write("INSERT INTO t VALUES ('a', 1)")  # the WAL now holds a write
    assert _mode(path.parent) == 0o700
    for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm", "db.sqlite3-lock"):
        assert _mode(path.parent / name) == 0o600, name


def test_an_existing_open_folder_and_files_are_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "var"
    path = folder / "db.sqlite3"
    before = os.umask(0o022)
    try:
        Store(str(path), SCHEMA).write("INSERT INTO t VALUES ('a', 1)")
        for file in folder.iterdir():
            file.chmod(0o644)
        folder.chmod(0o755)
        Store(str(path), SCHEMA)
    finally:
        os.umask(before)
    assert _mode(folder) == 0o700
    assert {file.name: _mode(file) for file in folder.iterdir()} == {
        "db.sqlite3": 0o600, "db.sqlite3-wal": 0o600, "db.sqlite3-shm": 0o600, "db.sqlite3-lock": 0o600}
