"""The service process killed (SIGKILL) while items are in flight, then restarted: every
accepted item reaches HAPI exactly once. The service's own logs carry no PHI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import PROTOCOLS
from tests.faultproxy import FaultProxy, Slow
from tests.integration.helpers import example_diary, example_orders
from tests.integration.test_faults import assert_exactly_once

pytestmark = pytest.mark.ehr
TOKEN = "kill-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """``fhir-migraine serve`` (gunicorn, two workers) as a real process group, on a SQLite file of
    its own or on ``database`` (a PostgreSQL URL, which several services may share)."""

    def __init__(self, tmp_path: Path, ehr_url: str, database: str | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "service.log"
        self.env = dict(
            os.environ,
            FHIR_MIGRAINE_DB=database or str(tmp_path / "service.sqlite3"),
            FHIR_MIGRAINE_IMPORT_DIR=str(tmp_path / "imports"),
            FHIR_MIGRAINE_SEED_PROTOCOLS=str(PROTOCOLS),
            FHIR_MIGRAINE_EHR_URL=ehr_url,
            FHIR_MIGRAINE_API_TOKEN=TOKEN,
            FHIR_MIGRAINE_LEASE="4",
            FHIR_MIGRAINE_RETRY_BASE="0.2",
            FHIR_MIGRAINE_RETRY_CAP="2",
            FHIR_MIGRAINE_WORKER_INTERVAL="0.1",
            FHIR_MIGRAINE_EHR_TIMEOUT="10",
            FHIR_MIGRAINE_TRANSACTION_SIZE="10",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fhir_migraine.cli", "serve", "--port", str(self.port)],
                env=self.env, stdout=log, stderr=log, start_new_session=True,
            )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        raise AssertionError(f"the service did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)


@pytest.fixture
def proxy(ehr_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(ehr_url.rsplit("/fhir", 1)[0]) as running:
        yield running


# HAPI as it is (one transaction per part), and an EHR that takes one request per resource and no
# If-None-Exist (the kill then lands between two resources of a part: what was written before it
# is found, by the progress recorded or by a search, and not written again).
MODE_SETS = {"transactions": (), "per-resource-without-conditional": ("no-transaction", "no-conditional")}


@pytest.fixture(params=list(MODE_SETS), ids=list(MODE_SETS))
def ehr_mode_names(request: pytest.FixtureRequest, ehr_modes: Any) -> tuple[str, ...]:
    ehr_modes(*MODE_SETS[request.param])
    return MODE_SETS[request.param]


@pytest.fixture
def service(tmp_path: Path, proxy: FaultProxy, ehr_mode_names: tuple[str, ...], database: str) -> Iterator[Service]:
    running = Service(tmp_path, f"{proxy.url}/fhir", database).start()
    yield running
    running.stop()


def in_flight(service: Service, *, per_resource: bool) -> bool:
    """An item is being sent; one request per resource: one that has written part of its part."""
    sending = service.call("GET", "/outbox?state=sending").json()["items"]
    if not per_resource:
        return bool(sending)
    return any(service.call("GET", f"/outbox/{i['id']}").json().get("part_progress") for i in sending)


def test_a_killed_service_delivers_every_accepted_item_exactly_once_after_restart(
    service: Service, proxy: FaultProxy, ehr, run_id: str, ehr_mode_names: tuple[str, ...]
) -> None:
    patient = f"Patient/kill-{run_id}"
    proxy.set_mode(Slow(3.0))  # every answer held back: items are in flight when the kill comes
    accepted: list[tuple[str, dict[str, Any]]] = []
    for order in example_orders(run_id, patient):
        body = service.call("POST", "/orders", json=order).json()
        accepted.append((body["outbox_id"], body["bundle"]))
    for start in range(0, 30, 6):
        body = service.call("POST", "/diary", json=example_diary(run_id, patient)[start:start + 6]).json()
        accepted.append((body["outbox_id"], body["bundle"]))
    deadline = time.time() + 60
    while not in_flight(service, per_resource=bool(ehr_mode_names)):
        assert time.time() < deadline, "no item ever went in flight"
        time.sleep(0.1)

    service.kill()
    proxy.set_mode(None)
    service.start()

    deadline = time.time() + 120
    while True:
        states = [service.call("GET", f"/outbox/{item_id}").json()["state"] for item_id, _ in accepted]
        if all(s == "sent" for s in states):
            break
        assert time.time() < deadline, states
        time.sleep(0.3)
    assert_exactly_once(ehr, [bundle for _, bundle in accepted])

    # The logs of the whole run: JSON lines, and none carries patient data.
    lines = [line for line in service.log.read_text().splitlines() if line.strip()]
    assert lines, "the service logged nothing"
    records = [json.loads(line) for line in lines]  # every line is a JSON object
    assert any(r.get("msg") == "outbox item sent" for r in records)
    text = "\n".join(lines)
    secrets = {patient, patient.split("/")[1], "MRN123", "Woke up twice", "wedding", "明天再看", "sumatriptan", "2026-10-2"}
    secrets |= {e["entry_id"] for e in example_diary(run_id, patient)}
    leaked = [s for s in secrets if s in text]
    assert not leaked, leaked
