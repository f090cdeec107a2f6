"""The durable outbox and its worker, with a fake EHR and a fake clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fhir_migraine.ehr.outbox import Outbox
from fhir_migraine.ehr.worker import RetryPolicy, drain
from fhir_migraine.errors import EhrError, EhrRejected, EhrUnavailable
from fhir_migraine.mapping.fhir import identifiers, split_transaction
from tests.conftest import EXAMPLES


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeEhr:
    """Answers each transaction with the next scripted result (an error to raise or 'ok')."""

    def __init__(self, *script: EhrError | str) -> None:
        self.script = list(script)
        self.received: list[dict[str, Any]] = []

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        self.received.append(bundle)
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, EhrError):
            raise step
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": {"status": "201 Created"}}]}


POLICY = RetryPolicy(base=1.0, cap=60.0, lease=30.0)
PART = {"resourceType": "Bundle", "type": "transaction", "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Observation"}}]}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(database: str, clock: Clock) -> Outbox:
    """The outbox on each store (SQLite, then PostgreSQL)."""
    return Outbox(database, clock=clock)


def test_an_item_is_sent_and_keeps_the_ehr_answer(outbox: Outbox) -> None:
    item_id = outbox.add("diary", [PART])
    assert outbox.get(item_id).state == "pending"
    assert drain(outbox, FakeEhr(), POLICY) == 1
    item = outbox.get(item_id)
    assert (item.state, item.attempts, item.next_part) == ("sent", 1, 1)
    assert item.responses[0]["type"] == "transaction-response"


def test_a_retryable_failure_waits_at_least_retry_after(outbox: Outbox, clock: Clock) -> None:
    item_id = outbox.add("order", [PART])
    drain(outbox, FakeEhr(EhrUnavailable("429", status=429, retry_after=20.0)), POLICY)
    item = outbox.get(item_id)
    assert item.state == "pending"
    assert item.next_attempt_at - clock.now >= 20.0
    assert item.last_error["status"] == 429
    assert drain(outbox, FakeEhr(), POLICY) == 0, "not due yet"
    clock.now += 20.0
    assert drain(outbox, FakeEhr(), POLICY) == 1
    assert outbox.get(item_id).state == "sent"


def test_a_rejection_is_a_dead_letter_with_the_ehr_outcome(outbox: Outbox) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing", "diagnostics": "bad"}]}
    item_id = outbox.add("order", [PART])
    drain(outbox, FakeEhr(EhrRejected("412", status=412, outcome=outcome)), POLICY)
    item = outbox.get(item_id)
    assert item.state == "dead"
    assert item.last_error["outcome"] == outcome
    assert outbox.ids("dead") == [item_id]


def test_an_item_whose_worker_died_is_claimed_again_after_its_lease(outbox: Outbox, clock: Clock) -> None:
    item_id = outbox.add("order", [PART])
    assert outbox.claim(POLICY.lease).id == item_id  # a worker takes it, then dies
    assert outbox.claim(POLICY.lease) is None
    clock.now += POLICY.lease + 1
    assert outbox.claim(POLICY.lease).id == item_id
    assert outbox.get(item_id).attempts == 2


def test_parts_already_sent_are_not_sent_again_after_a_failure(outbox: Outbox, clock: Clock) -> None:
    parts = [dict(PART, id=str(i)) for i in range(3)]
    item_id = outbox.add("diary", parts)
    ehr = FakeEhr("ok", EhrUnavailable("down"))
    drain(outbox, ehr, POLICY)
    assert outbox.get(item_id).next_part == 1
    clock.now += 1000
    ehr = FakeEhr()
    drain(outbox, ehr, POLICY)
    assert [p["id"] for p in ehr.received] == ["1", "2"]
    assert outbox.get(item_id).state == "sent"


def test_the_outbox_survives_a_restart(database: str, clock: Clock) -> None:
    path = database
    item_id = Outbox(path, clock=clock).add("order", [PART])
    again = Outbox(path, clock=clock)
    assert again.get(item_id).parts == [PART]
    assert again.counts() == {"pending": 1, "sending": 0, "sent": 0, "dead": 0, "conflict": 0}


def test_max_attempts_gives_up_into_dead(outbox: Outbox, clock: Clock) -> None:
    policy = RetryPolicy(base=1.0, cap=1.0, lease=30.0, max_attempts=2)
    item_id = outbox.add("order", [PART])
    for _ in range(2):
        drain(outbox, FakeEhr(EhrUnavailable("down")), policy)
        clock.now += 10
    assert outbox.get(item_id).state == "dead"


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.5, 1.0), (2, 1.0, 2.0), (5, 8.0, 16.0), (20, 30.0, 60.0)])
def test_backoff_grows_exponentially_with_jitter_up_to_the_cap(attempt: int, low: float, high: float) -> None:
    assert POLICY.delay(attempt, None, rand=lambda: 0.0) == low
    assert POLICY.delay(attempt, None, rand=lambda: 1.0) == high


def test_split_keeps_each_diary_day_with_its_members() -> None:
    bundle = json.loads((EXAMPLES / "diary" / "month.bundle.json").read_text())
    parts = split_transaction(bundle, 7)
    assert sorted(e["fullUrl"] for p in parts for e in p["entry"]) == sorted(e["fullUrl"] for e in bundle["entry"])
    assert len(parts) > 1
    for part in parts:
        urls = {e["fullUrl"] for e in part["entry"]}
        for entry in part["entry"]:
            for member in entry["resource"].get("hasMember", []):
                assert member["reference"] in urls
        assert len(part["entry"]) <= 7 or len({identifiers(e["resource"])[0]["value"].split("/")[0] for e in part["entry"]}) == 1
    assert sum(len(p["entry"]) for p in parts) == len(bundle["entry"])
