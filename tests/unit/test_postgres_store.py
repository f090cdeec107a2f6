"""The stores on PostgreSQL as on SQLite: each store's round trip on both, the numbered
migrations (from an empty database, from the previous version, a newer database refused), the
placeholders, and a database that cannot be reached."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import psycopg
import pytest

from fhir_migraine import postgres
from fhir_migraine.api.cds_auth import ReplayStore
from fhir_migraine.api.cds_feedback import Feedback, FeedbackStore
from fhir_migraine.ehr.group_pulls import GroupPulls
from fhir_migraine.ehr.imports import ImportJobs
from fhir_migraine.ehr.known import Known, KnownResources
from fhir_migraine.ehr.outbox import QUEUE_WALK, Outbox, claim_query
from fhir_migraine.ehr.pull import Cursors
from fhir_migraine.errors import ConfigError, StoreUnavailable
from fhir_migraine.library import ProtocolStore
from tests.conftest import PROTOCOLS
from tests.postgres import free_port

PART = {"resourceType": "Bundle", "type": "transaction", "entry": [
    {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Observation", "subject": {"reference": "Patient/1"}}}]}


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = %s AND c = %s"),
    ("WHERE o.id = :only AND x < :now", "WHERE o.id = %(only)s AND x < %(now)s"),
    ("WHERE parts LIKE '%x' AND y = ?", "WHERE parts LIKE '%%x' AND y = %s"),
    ("SELECT '1'::int, hashtext('a')", "SELECT '1'::int, hashtext('a')"),
])
def test_portable_sql_becomes_psycopg_placeholders(sql: str, expected: str) -> None:
    assert postgres.to_postgres(sql) == expected


def test_the_database_kind_is_read_from_the_setting() -> None:
    assert postgres.is_postgres("postgresql://u@h/db") and postgres.is_postgres("postgres://u@h/db")
    assert not postgres.is_postgres("var/fhir-migraine.sqlite3")


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [version for version, _, _ in postgres.migrations()]
    assert versions == list(range(1, len(versions) + 1))


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_an_empty_database_gets_every_migration_once_however_many_open_it_together(postgres_database: str) -> None:
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            with psycopg.connect(postgres_database, autocommit=True) as conn:
                postgres.migrate(conn)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    with psycopg.connect(postgres_database) as conn:
        applied = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert applied == [version for version, _, _ in postgres.migrations()]
    assert {"outbox", "outbox_patients", "ehr_resources", "pull_cursors", "protocols", "protocol_history", "imports",
            "import_items", "smart_launches", "smart_sessions", "cds_jti", "cds_feedback", "group_pulls",
            "group_pull_patients"} <= _tables(postgres_database)


def test_a_database_of_the_previous_version_keeps_its_items_when_upgraded(postgres_database: str) -> None:
    latest = postgres.migrations()[-1][0]
    assert latest >= 2, "a previous version exists to upgrade from"
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        assert postgres.migrate(conn, up_to=latest - 1) == list(range(1, latest))
        # What the previous release left: an import job, written with that release's tables.
        conn.execute('INSERT INTO imports (id, state, path, bytes, created_at, updated_at)'
                     " VALUES ('job-1', 'pending', '/nowhere/job-1.ndjson', 10, 1, 1)")
    assert "group_pulls" not in _tables(postgres_database)
    pulls = GroupPulls(postgres_database)  # opening applies the rest
    assert "group_pulls" in _tables(postgres_database)
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        assert postgres.migrate(conn) == []  # nothing left to apply
        applied = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert applied == list(range(1, latest + 1))
    jobs = ImportJobs(postgres_database, folder=str(Path(tempfile.mkdtemp())))
    assert jobs.get("job-1").state == "pending"
    pull_id = pulls.create("Group/7", None)
    assert pulls.summary(pull_id)["state"] == "pending"


def test_a_database_newer_than_this_release_is_refused(postgres_database: str) -> None:
    Outbox(postgres_database)
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)")
    postgres.close_pools()
    with pytest.raises(ConfigError, match="newer than this release"):
        Outbox(postgres_database)


def test_a_database_that_cannot_be_reached_is_store_unavailable() -> None:
    url = f"postgresql://nobody:secret-password@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(StoreUnavailable) as raised:
        Outbox(url)
    assert raised.value.http_status == 503
    assert "secret-password" not in str(raised.value)


def test_the_claim_walks_the_queue_in_turn_order_and_stops_at_the_first_item_free(postgres_database: str) -> None:
    """The plan of the claim on a new table (no statistics yet, when the planner guessed worst):
    the queue index read in turn order under a Limit, never every queued item sorted."""
    outbox = Outbox(postgres_database)
    for _ in range(300):
        outbox.add("diary", [PART])
    with psycopg.connect(postgres_database) as conn, conn.transaction():
        for setting in QUEUE_WALK:
            conn.execute(setting)
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN " + postgres.to_postgres(claim_query(True)), {"now": 2e9}))
    assert "Index Scan using outbox_queue on outbox o" in plan, plan
    assert "Sort" not in plan and "Seq Scan" not in plan, plan
    assert outbox.claim(30) is not None


# --- each store, the same on both databases --------------------------------------------------------

def test_the_protocol_library_seeds_once_and_keeps_history(database: str) -> None:
    library = ProtocolStore(database, seed=str(PROTOCOLS))
    ids = [s["id"] for s in library.summaries()]
    assert ids and ids == sorted(ids)
    again = ProtocolStore(database, seed=str(PROTOCOLS))  # a second instance starting: nothing seeded twice
    assert [s["id"] for s in again.summaries()] == ids
    first = library.require(ids[0])
    document = dict(first.document, version=f"{first.version}.1")
    _, new = library.put(ids[0], document, subject="author")
    assert not new, "a new version of a protocol already stored"
    assert again.require(ids[0]).version == f"{first.version}.1"
    assert [h["version"] for h in again.history(ids[0])] == [first.version, f"{first.version}.1"]


def test_known_resources_and_pull_cursors_round_trip(database: str) -> None:
    known = KnownResources(database, "https://ehr.example/fhir")
    known.put("Observation", "sys|1", Known("obs-1", "1", "digest-a", {"code": "x"}))
    known.put("Observation", "sys|1", Known("obs-1", "2", "digest-b", {"code": "y"}))
    assert known.get("Observation", "sys|1") == Known("obs-1", "2", "digest-b", {"code": "y"})
    known.forget("Observation", "sys|1")
    assert known.get("Observation", "sys|1") is None
    cursors = Cursors(database)
    cursors.set("Patient/1", "2026-01-01T00:00:00Z")
    cursors.set("Patient/1", "2026-02-01T00:00:00Z")
    assert cursors.get("Patient/1") == "2026-02-01T00:00:00Z" and cursors.get("Patient/2") is None


def test_a_cds_jwt_id_is_accepted_once_across_instances(database: str) -> None:
    first, second = ReplayStore(database), ReplayStore(database)
    assert first.first_use("https://ehr.example", "jti-1", 2e9, now=1e9)
    assert not second.first_use("https://ehr.example", "jti-1", 2e9, now=1e9)
    assert second.first_use("https://other.example", "jti-1", 2e9, now=1e9)


def test_card_feedback_is_kept_in_order(database: str) -> None:
    store = FeedbackStore(database)
    items = [Feedback("card-1", "accepted", ("s1",), None, "2026-12-01T10:00:00Z"),
             Feedback("card-1", "overridden", (), "http://snomed.info/sct|123", "2026-12-01T10:05:00Z")]
    store.record("migraine-order-sign", items, client="https://ehr.example")
    assert store.of_card("card-1") == items
