"""Simultaneous items for patients (and a requester) the EHR does not have yet, delivered by four
gunicorn workers against the real HAPI: HAPI creates each missing reference target as a
placeholder, and two transactions creating the same one at once make it answer 409. Every
accepted item must still reach HAPI exactly once, and none may end dead."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.faultproxy import FaultProxy
from tests.integration.helpers import example_diary, example_orders
from tests.integration.test_faults import assert_exactly_once
from tests.integration.test_kill import Service

pytestmark = pytest.mark.ehr

WORKERS = 4
ITEMS = 50  # per round: 25 new patients, two items each
ROUNDS = 2
SETTLE_S = 240.0


@pytest.fixture
def service(tmp_path: Path, ehr_url: str, database: str) -> Iterator[Service]:
    with FaultProxy(ehr_url.rsplit("/fhir", 1)[0]) as proxy:  # plain pass-through: loopback, no faults
        running = Service(tmp_path, f"{proxy.url}/fhir", database)
        running.env["FHIR_MIGRAINE_WORKERS"] = str(WORKERS)
        running.start()
        try:
            yield running
        finally:
            running.stop()


def _requests(round_id: str) -> list[tuple[str, Any]]:
    """Fifty requests: pairs of items for 25 new patients, orders sharing one new Practitioner."""
    practitioner = {"reference": f"Practitioner/race-{round_id}"}
    orders = iter(example_orders(round_id, "Patient/unused") * ITEMS)
    entries = iter(example_diary(round_id, "Patient/unused") * 2)
    made: list[tuple[str, Any]] = []
    for k in range(ITEMS // 2):
        patient = {"reference": f"Patient/race-{round_id}-{k}"}
        kinds = (("order", "diary"), ("order", "order"), ("diary", "diary"))[k % 3]
        for n, kind in enumerate(kinds):
            if kind == "order":
                order = dict(next(orders), patient=patient, requester=practitioner)
                order["order_id"] = f"race-{round_id}-{k}-{n}"
                made.append(("/orders", order))
            else:
                entry = dict(next(entries), patient=patient)
                entry["entry_id"] = f"race-{round_id}-{k}-{n}"
                made.append(("/diary", entry))
    return made


def _settled(service: Service, ids: list[str]) -> dict[str, dict[str, Any]]:
    deadline = time.time() + SETTLE_S
    while True:
        found = {i: service.call("GET", f"/outbox/{i}").json() for i in ids}
        if all(s["state"] in ("sent", "dead") for s in found.values()):
            return found
        assert time.time() < deadline, sorted(s["state"] for s in found.values())
        time.sleep(0.5)


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_simultaneous_items_for_new_patients_all_reach_hapi_exactly_once(
    service: Service, ehr, run_id: str, round_no: int
) -> None:
    round_id = f"{run_id}r{round_no}"
    requests_ = _requests(round_id)
    assert len(requests_) == ITEMS
    start = threading.Barrier(len(requests_))

    def post(request: tuple[str, Any]) -> dict[str, Any]:
        path, body = request
        start.wait(30)  # all at once
        answer = service.call("POST", path, json=body)
        assert answer.status_code == 202, answer.text
        found: dict[str, Any] = answer.json()
        return found

    with ThreadPoolExecutor(len(requests_)) as pool:
        accepted = list(pool.map(post, requests_))
    summaries = _settled(service, [a["outbox_id"] for a in accepted])
    dead = [s for s in summaries.values() if s["state"] == "dead"]
    assert not dead, f"{len(dead)} of {ITEMS} dead: {[d.get('last_error', {}).get('status') for d in dead]}"
    assert_exactly_once(ehr, [a["bundle"] for a in accepted])
