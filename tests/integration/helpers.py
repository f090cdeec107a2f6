"""Example inputs made unique to one test run, the service against an EHR, and waiting for the outbox."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from fhir_migraine.api import create_app, start_outbox_worker, stop_outbox_worker
from fhir_migraine.config import EhrSettings, OutboxSettings, Settings, WorkerSettings
from tests.conftest import API_TOKEN, EXAMPLES


@contextmanager
def running_service(settings: Settings, ehr: EhrSettings, outbox: OutboxSettings) -> Iterator[Any]:
    """A test client of the service pushing to ``ehr``, its outbox worker running (polling every
    0.1 s) until the block ends."""
    app = create_app(replace(settings, ehr=ehr, outbox=outbox, worker=WorkerSettings(interval=0.1)))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    assert start_outbox_worker(app, stop_at_exit=False)
    try:
        yield client
    finally:
        assert stop_outbox_worker(app)

ORDER_FILES = sorted((EXAMPLES / "orders").glob("*.json"))


def example_orders(run_id: str, patient: str) -> list[dict[str, Any]]:
    orders = []
    for path in ORDER_FILES:
        order = json.loads(path.read_text())
        order["order_id"] = f"{order['order_id']}-{run_id}"
        order["patient"] = {"reference": patient}
        orders.append(order)
    return orders


def example_diary(run_id: str, patient: str, name: str = "month") -> list[dict[str, Any]]:
    entries = json.loads((EXAMPLES / "diary" / f"{name}.json").read_text())
    for entry in entries:
        entry["entry_id"] = f"{entry['entry_id']}-{run_id}"
        entry["patient"] = {"reference": patient}
    return entries


def wait_until_settled(client: Any, ids: list[str], timeout: float = 120.0) -> dict[str, dict[str, Any]]:
    """Poll GET /outbox/{id} until every item is sent, dead or in conflict; their last summaries."""
    deadline = time.time() + timeout
    while True:
        found = {i: client.get(f"/outbox/{i}").get_json() for i in ids}
        if all(s["state"] in ("sent", "dead", "conflict") for s in found.values()):
            return found
        if time.time() > deadline:
            raise AssertionError(f"outbox items not settled after {timeout} s: {[s['state'] for s in found.values()]}")
        time.sleep(0.2)


def sort_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(copy.deepcopy(entries), key=lambda e: e.get("entry_id") or e.get("order_id"))
