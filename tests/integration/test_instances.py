"""Three service instances (each gunicorn with its workers) on three ports share one PostgreSQL
database and one HAPI: 500 orders and diary entries spread across them, one instance killed
(SIGKILL) in the middle while a delivery of its own is in flight (HAPI has taken the transaction,
the answer has not come back); every accepted item reaches HAPI exactly once, the killed
instance's items taken over by the others when their leases run out."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.faultproxy import FaultProxy, Slow
from tests.integration.helpers import example_diary, example_orders
from tests.integration.test_faults import assert_exactly_once
from tests.integration.test_kill import Service

pytestmark = pytest.mark.ehr

INSTANCES = 3
ITEMS = 500
PATIENTS = 50
SETTLE_S = 420.0


@pytest.fixture
def proxy(ehr_url: str) -> Iterator[FaultProxy]:
    """The way of the instance to be killed to HAPI: each delivery's answer held back 2 s."""
    with FaultProxy(ehr_url.rsplit("/fhir", 1)[0]) as running:
        running.set_faults(*[Slow(2.0)] * ITEMS, methods=["POST"])
        yield running


@pytest.fixture
def instances(tmp_path: Path, ehr_url: str, postgres_database: str, proxy: FaultProxy) -> Iterator[list[Service]]:
    running: list[Service] = []
    try:
        for n in range(INSTANCES):
            folder = tmp_path / f"instance-{n}"
            folder.mkdir()
            url = f"{proxy.url}/fhir" if n == INSTANCES - 1 else ehr_url
            running.append(Service(folder, url, postgres_database).start())
        yield running
    finally:
        for service in running:
            service.stop()


def _requests(run_id: str) -> list[tuple[str, dict[str, Any]]]:
    """500 requests for 50 patients, each patient's orders and diary days interleaved."""
    made: list[tuple[str, dict[str, Any]]] = []
    for k in range(PATIENTS):
        patient = f"Patient/inst-{run_id}-{k}"
        orders = example_orders(f"{run_id}-{k}", patient)
        days = example_diary(f"{run_id}-{k}", patient)
        mixed = [("/orders", order) for order in orders] + [("/diary", day) for day in days]
        made += mixed[: ITEMS // PATIENTS]
    # Patients interleaved, so every instance gets items of every patient.
    by_patient = [made[i:i + ITEMS // PATIENTS] for i in range(0, len(made), ITEMS // PATIENTS)]
    return [item for group in itertools.zip_longest(*by_patient) for item in group if item is not None]


def _post(service: Service, request: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    path, body = request
    answer = service.call("POST", path, json=body)
    assert answer.status_code == 202, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_three_instances_one_killed_deliver_every_item_exactly_once(
        instances: list[Service], proxy: FaultProxy, ehr, run_id: str) -> None:
    requests_ = _requests(run_id)
    assert len(requests_) == ITEMS
    half = ITEMS // 2
    with ThreadPoolExecutor(12) as pool:
        first = list(pool.map(lambda n: _post(instances[n % INSTANCES], requests_[n]), range(half)))
    victim, survivors = instances[-1], instances[:-1]
    queued = victim.call("GET", "/ready").json()["outbox"]
    deadline = time.time() + 30
    while not proxy.faults_applied:  # a delivery of the victim has reached HAPI, its answer held
        assert time.time() < deadline, "the instance to be killed never delivered"
        time.sleep(0.05)
    victim.kill()  # items it had claimed are in flight: their leases run out, another instance takes them
    with pytest.raises(requests.ConnectionError):
        victim.call("GET", "/health")
    with ThreadPoolExecutor(12) as pool:
        second = list(pool.map(lambda n: _post(survivors[n % len(survivors)], requests_[n]), range(half, ITEMS)))
    assert queued["pending"] + queued["sending"] > 0, "the kill came while items were still to be delivered"
    accepted = first + second
    assert len({a["outbox_id"] for a in accepted}) == ITEMS

    deadline = time.time() + SETTLE_S
    while True:
        counts = survivors[0].call("GET", "/ready").json().get("outbox", {})
        if counts.get("sent") == ITEMS or time.time() > deadline:
            break
        time.sleep(1.0)
    states = {a["outbox_id"]: survivors[1].call("GET", f"/outbox/{a['outbox_id']}").json()["state"] for a in accepted}
    assert sorted(set(states.values())) == ["sent"], {s: list(states.values()).count(s) for s in set(states.values())}
    assert_exactly_once(ehr, [a["bundle"] for a in accepted])
