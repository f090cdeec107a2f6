"""The outbox worker's lifecycle: created with the app but started only when asked (after the
fork, by gunicorn's hook), stopped without losing or repeating an item."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fhir_migraine.api import create_app, server, services_of, start_outbox_worker, stop_outbox_worker
from fhir_migraine.config import EhrSettings, Settings, WorkerSettings
from fhir_migraine.ehr.gateway import EhrGateway
from fhir_migraine.ehr.outbox import Outbox
from fhir_migraine.ehr.worker import RetryPolicy, Worker

POLICY = RetryPolicy(base=0.01, cap=0.01, lease=30.0)
ANSWER = {"resourceType": "Bundle", "type": "transaction-response",
          "entry": [{"response": {"status": "201 Created", "location": "Observation/1/_history/1"}}]}


def part(n: int) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "id": f"part-{n}",
            "entry": [{"fullUrl": f"urn:uuid:{n}", "resource": {"resourceType": "Observation"}}]}


class BlockingEhr:
    """Holds the first transaction until ``release`` is set, as a slow EHR would."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.received: list[str] = []

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        self.entered.set()
        assert self.release.wait(10), "the test never released the EHR"
        self.received.append(bundle["id"])
        return ANSWER


class CountingEhr:
    def __init__(self) -> None:
        self.received: list[str] = []

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        self.received.append(bundle["id"])
        return ANSWER


def run_until_sent(outbox: Outbox, ehr: CountingEhr, item_id: str) -> None:
    """A new worker over ``ehr`` until the item is sent (5 s at most), then stopped."""
    worker = Worker(outbox, ehr, POLICY, interval=0.01).start()
    try:
        for _ in range(500):
            if (found := outbox.get(item_id)) is not None and found.state == "sent":
                break
            threading.Event().wait(0.01)
    finally:
        assert worker.stop(timeout=5)

def test_a_stop_during_delivery_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    outbox = Outbox(str(tmp_path / "db.sqlite3"))
    item_id = outbox.add("diary", [part(1), part(2), part(3)])
    slow = BlockingEhr()
    worker = Worker(outbox, slow, POLICY, interval=0.01).start()
    assert slow.entered.wait(5)

    assert worker.stop(timeout=0.2) is False, "part 1 is still in flight"
    slow.release.set()
    assert worker.stop(timeout=5) is True
    item = outbox.get(item_id)
    assert item is not None
    assert (item.state, item.next_part) == ("pending", 1), "part 1 recorded, the rest given back"

    fresh = CountingEhr()
    run_until_sent(outbox, fresh, item_id)
    assert slow.received + fresh.received == ["part-1", "part-2", "part-3"]
    sent = outbox.get(item_id)
    assert sent is not None and sent.state == "sent"


def test_an_item_whose_worker_never_returned_is_taken_up_when_its_lease_runs_out(tmp_path: Path) -> None:
    now = [1000.0]
    outbox = Outbox(str(tmp_path / "db.sqlite3"), clock=lambda: now[0])
    item_id = outbox.add("order", [part(1)])
    assert outbox.claim(POLICY.lease) is not None  # a worker took it, then its process died
    assert outbox.claim(POLICY.lease) is None
    now[0] += POLICY.lease + 1
    fresh = CountingEhr()
    run_until_sent(outbox, fresh, item_id)
    assert fresh.received == ["part-1"]


def test_a_worker_never_started_stops_at_once(tmp_path: Path) -> None:
    assert Worker(Outbox(str(tmp_path / "db.sqlite3")), CountingEhr(), POLICY).stop(timeout=0) is True


@pytest.fixture
def ehr_settings(settings: Settings) -> Settings:
    return replace(settings, ehr=EhrSettings(url="http://127.0.0.1:9/fhir"), worker=WorkerSettings(interval=0.05))


def test_creating_the_app_starts_no_thread(ehr_settings: Settings) -> None:
    before = {t.name for t in threading.enumerate()}
    app = create_app(ehr_settings)
    gateway = services_of(app).gateway
    assert gateway is not None and not gateway.worker_running
    assert "outbox-worker" not in {t.name for t in threading.enumerate()} - before


def test_the_worker_starts_once_and_stops(ehr_settings: Settings) -> None:
    app = create_app(ehr_settings)
    assert start_outbox_worker(app, stop_at_exit=False)
    assert start_outbox_worker(app, stop_at_exit=False), "a second start keeps the running worker"
    assert sum(t.name == "outbox-worker" and t.is_alive() for t in threading.enumerate()) >= 1
    assert stop_outbox_worker(app)
    gateway = services_of(app).gateway
    assert gateway is not None and not gateway.worker_running


def test_a_disabled_worker_or_no_ehr_starts_nothing(settings: Settings, ehr_settings: Settings) -> None:
    assert start_outbox_worker(create_app(settings), stop_at_exit=False) is False
    disabled = replace(ehr_settings, worker=WorkerSettings(enabled=False))
    assert start_outbox_worker(create_app(disabled), stop_at_exit=False) is False


def test_gunicorns_hooks_start_the_worker_after_the_fork_and_stop_it_at_exit(ehr_settings: Settings) -> None:
    app = create_app(ehr_settings)
    gunicorn_worker = SimpleNamespace(wsgi=app)
    server.post_worker_init(gunicorn_worker)
    gateway = services_of(app).gateway
    assert isinstance(gateway, EhrGateway) and gateway.worker_running
    server.worker_exit(SimpleNamespace(), gunicorn_worker)
    assert not gateway.worker_running
