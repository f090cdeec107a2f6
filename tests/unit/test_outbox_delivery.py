"""Delivery order and fairness of the outbox, 409s, capped Retry-After, dead items put back, the
purge of old Bundles, and an outbox of an earlier release: with fake EHRs and a fake clock."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_migraine.ehr.client import translate_status
from fhir_migraine.ehr.outbox import Outbox, patients_of
from fhir_migraine.ehr.worker import DAY_S, RetryPolicy, Worker, drain
from fhir_migraine.errors import Conflict, EhrRejected, EhrUnavailable, NotFound
from tests.unit.test_outbox import POLICY, Clock, FakeEhr


def part(patient: str | None, n: int = 0, **subject: Any) -> dict[str, Any]:
    """A one-entry transaction about ``patient`` (a reference), or about ``subject`` as given."""
    target = subject or ({"reference": patient} if patient else None)
    resource: dict[str, Any] = {"resourceType": "Observation", "id": f"{patient}-{n}"}
    if target:
        resource["subject"] = target
    return {"resourceType": "Bundle", "type": "transaction", "entry": [{"fullUrl": f"urn:uuid:{n}", "resource": resource}]}


def sent_ids(ehr: FakeEhr) -> list[str]:
    return [b["entry"][0]["resource"]["id"] for b in ehr.received]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(database: str, clock: Clock) -> Outbox:
    """The outbox on each store (SQLite, then PostgreSQL)."""
    return Outbox(database, clock=clock)


def _response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = b'{"resourceType":"OperationOutcome","issue":[]}'
    response.headers.update(headers or {})
    return response


# --- which patients an item touches ---------------------------------------------------------------

def test_the_patients_of_an_item_are_its_subject_references_and_identifiers() -> None:
    parts = [part("Patient/1"), part(None, identifier={"system": "urn:mrn", "value": "M7"}), part("Patient/1", 2)]
    assert patients_of(parts) == ["Patient/1", "urn:mrn|M7"]
    assert patients_of([part(None)]) == []


# --- per-patient order --------------------------------------------------------------------------

def test_an_item_waits_while_an_earlier_item_of_its_patient_is_unfinished(outbox: Outbox, clock: Clock) -> None:
    first = outbox.add("order", [part("Patient/1", 1)])
    clock.now += 1
    second = outbox.add("diary", [part("Patient/1", 2)])
    other = outbox.add("order", [part("Patient/2", 3)])
    assert outbox.claim(POLICY.lease).id == first
    assert outbox.claim(POLICY.lease).id == other, "another patient goes in parallel; Patient/1's next waits"
    assert outbox.claim(POLICY.lease) is None
    assert outbox.part_sent(other, {"entry": []}) == "sent"
    outbox.retry(first, 60.0, {"type": "EhrUnavailable"})  # the first backs off: still unfinished
    assert outbox.claim(POLICY.lease) is None, "the later item of Patient/1 may not overtake it"
    clock.now += 60
    assert outbox.claim(POLICY.lease).id == first
    outbox.part_sent(first, {"entry": []})
    assert outbox.claim(POLICY.lease).id == second


def test_a_dead_item_no_longer_holds_its_patients_later_items(outbox: Outbox) -> None:
    first = outbox.add("order", [part("Patient/1", 1)])
    second = outbox.add("order", [part("Patient/1", 2)])
    drain(outbox, FakeEhr(EhrRejected("refused", status=422)), POLICY)
    assert outbox.get(first).state == "dead"
    assert outbox.get(second).state == "sent"


def test_a_patient_named_by_identifier_is_ordered_the_same_way(outbox: Outbox) -> None:
    mrn = {"identifier": {"system": "urn:mrn", "value": "M7"}}
    first = outbox.add("order", [part(None, 1, **mrn)])
    outbox.add("order", [part(None, 2, **mrn)])
    assert outbox.claim(POLICY.lease).id == first
    assert outbox.claim(POLICY.lease) is None


WORKERS = 4


def test_workers_in_several_processes_never_send_two_items_of_one_patient_at_once(database: str) -> None:
    path = database
    producer = Outbox(path)
    queued: dict[str, list[str]] = defaultdict(list)
    for n in range(40):
        patient = f"Patient/{n % 3}"  # fewer patients than workers: they would collide
        producer.add("order", [part(patient, n)])
        queued[patient].append(f"{patient}-{n}")
    in_flight: dict[str, int] = defaultdict(int)
    overlaps: list[str] = []
    delivered: dict[str, list[str]] = defaultdict(list)
    changed = threading.Condition()

    class Ehr:
        """Holds each transaction until every worker has one in flight (or 50 ms have passed), so
        any two items of one patient claimed together are seen together."""

        def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
            resource = bundle["entry"][0]["resource"]
            patient = resource["subject"]["reference"]
            with changed:
                in_flight[patient] += 1
                if in_flight[patient] > 1:
                    overlaps.append(patient)
                changed.notify_all()
                changed.wait_for(lambda: sum(in_flight.values()) >= WORKERS, timeout=0.05)
                in_flight[patient] -= 1
                delivered[patient].append(resource["id"])
            return {"resourceType": "Bundle", "type": "transaction-response",
                    "entry": [{"response": {"status": "201 Created", "location": "Observation/1/_history/1"}}]}

    # One connection per thread, as one per gunicorn worker process.
    threads = [threading.Thread(target=drain, args=(Outbox(path), Ehr(), POLICY)) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not overlaps
    assert dict(delivered) == dict(queued), "every patient's items in the order they were queued"
    assert producer.counts()["sent"] == 40


# --- fairness -----------------------------------------------------------------------------------

def test_a_large_item_does_not_hold_up_another_patients_order(outbox: Outbox, clock: Clock) -> None:
    diary = outbox.add("diary", [part("Patient/1", n) for n in range(400)])
    clock.now += 1
    order = outbox.add("order", [part("Patient/2", 999)])
    ehr = FakeEhr()
    drain(outbox, ehr, POLICY)
    assert sent_ids(ehr).index("Patient/2-999") <= 2, "the order goes after a part or two of the diary"
    assert [i for i in sent_ids(ehr) if i.startswith("Patient/1")] == [f"Patient/1-{n}" for n in range(400)]
    assert (outbox.get(diary).state, outbox.get(order).state) == ("sent", "sent")
    assert outbox.get(diary).attempts == 1, "the turns given up between parts are one attempt"


def test_two_large_items_take_turns(outbox: Outbox, clock: Clock) -> None:
    outbox.add("diary", [part("Patient/1", n) for n in range(3)])
    clock.now += 1
    outbox.add("diary", [part("Patient/2", n) for n in range(3)])

    class Ticking(FakeEhr):
        def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
            clock.now += 1  # each transaction takes a second
            return super().transaction(bundle)

    ehr = Ticking()
    drain(outbox, ehr, POLICY)
    assert [i.split("/")[1][0] for i in sent_ids(ehr)] == ["1", "2", "1", "2", "1", "2"]


def test_a_stop_between_parts_leaves_the_item_pending_and_due(outbox: Outbox) -> None:
    item_id = outbox.add("diary", [part("Patient/1", n) for n in range(3)])
    stop = threading.Event()

    class StopAfterOne(FakeEhr):
        def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
            stop.set()
            return super().transaction(bundle)

    assert drain(outbox, StopAfterOne(), POLICY, stop=stop) == 1
    item = outbox.get(item_id)
    assert (item.state, item.next_part) == ("pending", 1)
    assert outbox.claim(POLICY.lease).id == item_id


# --- what the EHR's answers mean ------------------------------------------------------------------

def test_a_409_from_a_concurrent_create_is_retried_not_dead(outbox: Outbox, clock: Clock) -> None:
    item_id = outbox.add("order", [part("Patient/new", 1)])
    drain(outbox, FakeEhr(translate_status(_response(409))), POLICY)
    item = outbox.get(item_id)
    assert item.state == "pending" and item.last_error["status"] == 409
    assert 0 < item.next_attempt_at - clock.now <= POLICY.delay(1, None, rand=lambda: 1.0)
    clock.now += 60
    drain(outbox, FakeEhr(), POLICY)
    assert outbox.get(item_id).state == "sent"


def test_a_412_stays_final(outbox: Outbox) -> None:
    item_id = outbox.add("order", [part("Patient/1", 1)])
    drain(outbox, FakeEhr(translate_status(_response(412))), POLICY)
    assert outbox.get(item_id).state == "dead"


def test_a_huge_retry_after_is_capped_and_says_so(outbox: Outbox, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    policy = RetryPolicy(base=1.0, cap=60.0, lease=30.0, retry_after_cap=3600.0)
    item_id = outbox.add("order", [part("Patient/1", 1)])
    error = translate_status(_response(503, {"Retry-After": "999999999"}))
    with caplog.at_level(logging.WARNING, logger="fhir_migraine.ehr.worker"):
        drain(outbox, FakeEhr(error), policy)
    item = outbox.get(item_id)
    assert item.next_attempt_at - clock.now == 3600.0
    summary = outbox.summary(item_id)
    assert summary["retry_after_capped"] is True and summary["last_error"]["retry_after_capped"] is True
    assert [r.__dict__.get("retry_after_capped") for r in caplog.records] == [True]


def test_a_retry_after_within_the_cap_is_honoured_without_a_flag(outbox: Outbox, clock: Clock) -> None:
    policy = RetryPolicy(base=1.0, cap=60.0, lease=30.0, retry_after_cap=3600.0)
    item_id = outbox.add("order", [part("Patient/1", 1)])
    drain(outbox, FakeEhr(EhrUnavailable("busy", status=429, retry_after=120.0)), policy)
    assert outbox.get(item_id).next_attempt_at - clock.now == 120.0
    assert "retry_after_capped" not in outbox.summary(item_id)


# --- dead items put back --------------------------------------------------------------------------

def test_a_dead_item_is_put_back_with_its_cause_in_its_history(outbox: Outbox, clock: Clock) -> None:
    item_id = outbox.add("order", [part("Patient/1", 1)])
    drain(outbox, FakeEhr(EhrRejected("refused", status=422)), POLICY)
    clock.now += 10
    outbox.revive(item_id)
    item = outbox.get(item_id)
    assert (item.state, item.attempts, item.last_error) == ("pending", 0, None)
    assert [life["last_error"]["status"] for life in item.history] == [422]
    assert outbox.summary(item_id)["history"][0]["attempts"] == 1
    drain(outbox, FakeEhr(), POLICY)
    assert outbox.get(item_id).state == "sent"


def test_a_revived_item_again_holds_its_patients_later_items(outbox: Outbox) -> None:
    first = outbox.add("order", [part("Patient/1", 1)])
    drain(outbox, FakeEhr(EhrRejected("refused", status=422)), POLICY)
    later = outbox.add("order", [part("Patient/1", 2)])
    outbox.revive(first)
    assert outbox.claim(POLICY.lease).id == first
    assert outbox.claim(POLICY.lease) is None, later


def test_only_a_dead_item_can_be_put_back(outbox: Outbox) -> None:
    item_id = outbox.add("order", [part("Patient/1", 1)])
    with pytest.raises(Conflict):
        outbox.revive(item_id)
    with pytest.raises(NotFound):
        outbox.revive("no-such-item")
    assert outbox.get(item_id).state == "pending"


# --- purge ----------------------------------------------------------------------------------------

ANSWER = {"resourceType": "Bundle", "type": "transaction-response", "entry": [
    {"response": {"status": "201 Created", "location": "Observation/5/_history/1", "outcome": {"note": "x"}},
     "resource": {"resourceType": "Observation", "note": [{"text": "Woke up twice"}]}}]}


def test_purge_drops_old_bundles_and_keeps_identifiers_and_delivery_metadata(outbox: Outbox, clock: Clock) -> None:
    old = outbox.add("diary", [part("Patient/1", 1)])
    outbox.part_sent(outbox.claim(POLICY.lease).id, ANSWER)
    clock.now += 31 * DAY_S
    recent = outbox.add("diary", [part("Patient/2", 2)])
    outbox.part_sent(outbox.claim(POLICY.lease).id, ANSWER)
    waiting = outbox.add("order", [part("Patient/3", 3)])

    assert outbox.purge(30 * DAY_S) == [old]
    item = outbox.get(old)
    assert item.parts == [] and (item.state, item.part_count, item.resource_count, item.next_part) == ("sent", 1, 1, 1)
    assert item.responses == [{"resourceType": "Bundle", "type": "transaction-response",
                               "entry": [{"response": {"status": "201 Created", "location": "Observation/5/_history/1"}}]}]
    assert item.patients == ["Patient/1"]
    assert "purged_at" in outbox.summary(old)
    assert "Woke up twice" not in json.dumps(outbox.summary(old))
    assert outbox.get(recent).parts and outbox.get(waiting).parts
    assert outbox.purge(30 * DAY_S) == [], "purging again finds nothing"


def test_the_worker_purges_on_start(database: str, clock: Clock) -> None:
    outbox = Outbox(database, clock=clock)
    item_id = outbox.add("diary", [part("Patient/1", 1)])
    outbox.part_sent(outbox.claim(POLICY.lease).id, ANSWER)
    clock.now += 2 * DAY_S
    worker = Worker(outbox, FakeEhr(), POLICY, interval=0.01, retention_days=1.0).start()
    try:
        for _ in range(500):
            if outbox.get(item_id).parts == []:
                break
            threading.Event().wait(0.01)
    finally:
        assert worker.stop(timeout=5)
    assert outbox.get(item_id).parts == []


# --- an outbox of an earlier release --------------------------------------------------------------

OLD_SCHEMA = """
CREATE TABLE outbox (id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, parts TEXT NOT NULL,
    part_count INTEGER NOT NULL, resource_count INTEGER NOT NULL, next_part INTEGER NOT NULL DEFAULT 0,
    responses TEXT NOT NULL DEFAULT '[]', attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,
    lease_until REAL, last_error TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
"""


def test_an_outbox_of_an_earlier_release_keeps_its_items_and_learns_their_patients(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        for n in (1, 2):
            db.execute("INSERT INTO outbox (id, kind, state, parts, part_count, resource_count, next_attempt_at,"
                       " created_at, updated_at) VALUES (?, 'order', 'pending', ?, 1, 1, ?, ?, ?)",
                       (f"old-{n}", json.dumps([part("Patient/1", n)]), n, n, n))
    outbox = Outbox(str(path))
    assert outbox.get("old-1").patients == ["Patient/1"]
    assert outbox.claim(POLICY.lease).id == "old-1"
    assert outbox.claim(POLICY.lease) is None, "the second waits for the first of its patient"
