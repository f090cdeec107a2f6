"""Faults between the service and HAPI, injected by a proxy: EHR down, 500s, 429 with
Retry-After, answers slower than the timeout, a connection cut mid-response, a rejection. After
each, once the EHR is healthy, every accepted item is in HAPI exactly once (counted by
identifier) and a rejected one is a dead letter carrying the EHR's reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from fhir_migraine.config import EhrSettings, OutboxSettings
from fhir_migraine.identifiers import DIARY_SYSTEM
from fhir_migraine.mapping.fhir import identifiers
from tests.faultproxy import AfterUpstream, CutMidResponse, Down, Fault, FaultProxy, Slow, Status, TooMany
from tests.integration.conftest import count_by_identifier
from tests.integration.helpers import example_diary, example_orders, running_service, wait_until_settled

pytestmark = pytest.mark.ehr


@pytest.fixture
def proxy(ehr_url: str) -> Iterator[FaultProxy]:
    upstream = ehr_url.rsplit("/fhir", 1)[0]
    with FaultProxy(upstream) as running:
        yield running


@pytest.fixture
def service(proxy: FaultProxy, settings) -> Iterator[Any]:
    # The readiness probe looks often, so /ready reflects the fault within the test.
    ehr = EhrSettings(url=f"{proxy.url}/fhir", timeout=1.5, transaction_size=20, probe_interval=0.5, probe_timeout=1.0)
    with running_service(settings, ehr, OutboxSettings(retry_base=0.2, retry_cap=2.0)) as client:
        yield client


def accept_items(service: Any, run_id: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Two orders and three diary days accepted by the service; their ids and bundles."""
    patient = f"Patient/fault-{run_id}"
    ids, bundles = [], []
    for order in example_orders(run_id, patient)[:2]:
        answer = service.post("/orders", json=order)
        assert answer.status_code == 202
        ids.append(answer.get_json()["outbox_id"])
        bundles.append(answer.get_json()["bundle"])
    answer = service.post("/diary", json=example_diary(run_id, patient)[5:8])
    assert answer.status_code == 202
    ids.append(answer.get_json()["outbox_id"])
    bundles.append(answer.get_json()["bundle"])
    return ids, bundles


def assert_exactly_once(ehr: Any, bundles: list[dict[str, Any]]) -> None:
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            ident = identifiers(resource)[0]
            found = count_by_identifier(ehr, resource["resourceType"], ident["system"], ident["value"])
            assert found == 1, (resource["resourceType"], ident["value"], found)


FAULTS: dict[str, tuple[Fault, ...]] = {
    "500s": (Status(500), Status(500), Status(503)),
    "cut-mid-response": (CutMidResponse(), CutMidResponse()),
    "committed-then-500": (AfterUpstream(Status(500)),),
    "committed-then-closed": (AfterUpstream(Down()),),
    "slower-than-the-timeout": (Slow(3.0),),
    "connection-dropped": (Down(), Down()),
}


@pytest.mark.parametrize("faults", FAULTS.values(), ids=FAULTS.keys())
def test_after_the_fault_every_item_is_in_the_ehr_exactly_once(service, proxy: FaultProxy, ehr, run_id: str, faults) -> None:
    proxy.set_faults(*faults, methods=["POST"])  # the deliveries', not the readiness probe's GETs
    ids, bundles = accept_items(service, run_id)
    settled = wait_until_settled(service, ids, timeout=90)
    assert {s["state"] for s in settled.values()} == {"sent"}, settled
    assert len(proxy.faults_applied) == len(faults)
    assert sum(s["attempts"] for s in settled.values()) > len(ids), "the faults made the worker retry"
    assert_exactly_once(ehr, bundles)


def test_items_wait_while_the_ehr_is_down_and_arrive_once_it_is_back(service, proxy: FaultProxy, ehr, run_id: str) -> None:
    proxy.pause()
    ids, bundles = accept_items(service, run_id)
    time.sleep(2.0)
    waiting = [service.get(f"/outbox/{i}").get_json() for i in ids]
    assert all(w["state"] in ("pending", "sending") for w in waiting)
    assert any(w.get("last_error", {}).get("type") == "EhrUnavailable" for w in waiting)
    assert service.get("/ready").get_json()["ehr"]["reachable"] is False
    proxy.resume()
    settled = wait_until_settled(service, ids, timeout=90)
    assert {s["state"] for s in settled.values()} == {"sent"}
    assert_exactly_once(ehr, bundles)


# A short Retry-After is waited for in place (the same attempt asks again); a longer one is the
# outbox's: the item waits, and its second attempt comes after it.
@pytest.mark.parametrize(("retry_after", "attempts"), [("3", 1), ("7", 2)], ids=["in-place", "outbox"])
def test_429_retry_after_is_honoured(service, proxy: FaultProxy, ehr, run_id: str, retry_after: str,
                                     attempts: int) -> None:
    proxy.set_faults(TooMany(retry_after), methods=["POST"])
    patient = f"Patient/fault-{run_id}"
    started = time.monotonic()
    answer = service.post("/orders", json=example_orders(run_id, patient)[0])
    item_id = answer.get_json()["outbox_id"]
    settled = wait_until_settled(service, [item_id], timeout=60)[item_id]
    assert settled["state"] == "sent"
    assert settled["attempts"] == attempts
    assert time.monotonic() - started >= float(retry_after), "asked again before Retry-After"
    assert_exactly_once(ehr, [answer.get_json()["bundle"]])


def test_an_item_the_ehr_rejects_is_a_dead_letter_with_its_reason(service, ehr, run_id: str) -> None:
    entry = example_diary(run_id, f"Patient/fault-{run_id}")[0]
    # Two resources already carry the entry's identifier, so HAPI refuses the conditional create.
    clash = {"resourceType": "Observation", "status": "final", "code": {"text": "clash"},
             "identifier": [{"system": DIARY_SYSTEM, "value": entry["entry_id"]}]}
    for _ in range(2):
        ehr.transaction({"resourceType": "Bundle", "type": "transaction",
                         "entry": [{"resource": clash, "request": {"method": "POST", "url": "Observation"}}]})
    item_id = service.post("/diary", json=entry).get_json()["outbox_id"]
    dead = wait_until_settled(service, [item_id], timeout=60)[item_id]
    assert dead["state"] == "dead"
    assert dead["last_error"]["status"] == 412
    assert dead["last_error"]["outcome"]["resourceType"] == "OperationOutcome"
    assert dead["attempts"] == 1, "a rejection is not retried"
    listed = service.get("/outbox?state=dead").get_json()["items"]
    assert item_id in [i["id"] for i in listed]
    assert count_by_identifier(ehr, "Observation", DIARY_SYSTEM, entry["entry_id"]) == 2, "nothing more was written"
