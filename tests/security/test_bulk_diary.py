"""A 10,000-entry diary against a running service and the real HAPI: refused at once by
``POST /diary`` (413, pointing to the bulk path); through ``POST /imports`` accepted at once with
bounded memory in the service, mapped and queued in chunks while it is followed, and an order of
another patient posted after it is sent while the import's items still wait.

The test does not wait for HAPI to store the import's tens of thousands of Observations: once it
has seen what matters it stops the service, and the temporary database goes with the test."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.helpers import example_orders
from tests.integration.test_kill import TOKEN, Service

pytestmark = pytest.mark.ehr
ENTRIES = 10_000
#: The service's worker processes may grow by this much while they take and import the diary
#: (the request path that read such a diary whole grew by hundreds of MB).
MEMORY_GROWTH_BOUND = 150 * 1024 * 1024


def diary(run_id: str, patient: str) -> bytes:
    """NDJSON, one attack a day: each entry maps to a day Observation and its attack."""
    lines = []
    for n in range(ENTRIES):
        day = (date(2000, 1, 1) + timedelta(days=n)).isoformat()
        lines.append(json.dumps({
            "entry_id": f"bulk-{run_id}-{n}", "patient": {"reference": patient}, "date": day,
            "headache": {"start": f"{day}T06:30:00Z", "peak_intensity": 1 + n % 10, "symptoms": ["nausea"]},
        }))
    return ("\n".join(lines) + "\n").encode()


def worker_pids(service: Service) -> list[int]:
    """The gunicorn worker processes: the children of the master."""
    assert service.process is not None
    master = service.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def memory(pid: int, field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (the peak) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for process {pid}")


def wait_until(what: str, check: Any, *, seconds: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(every)


@pytest.fixture
def service(tmp_path: Path, ehr_url: str) -> Iterator[Service]:
    running = Service(tmp_path, ehr_url)
    running.env.update(FHIR_MIGRAINE_TRANSACTION_SIZE="100", FHIR_MIGRAINE_LEASE="30")
    running.start()
    yield running
    running.stop()


def test_a_10000_entry_import_is_taken_in_chunks_and_an_order_after_it_is_not_held_up(
        service: Service, run_id: str) -> None:
    body = diary(run_id, f"Patient/bulk-{run_id}")
    workers = worker_pids(service)
    before = {pid: memory(pid, "VmRSS") for pid in workers}

    started = time.monotonic()
    answer = requests.post(f"{service.url}/imports", data=body, timeout=60,
                           headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"})
    took = time.monotonic() - started
    assert answer.status_code == 202, answer.text
    assert took < 10, f"the upload took {took:.1f} s to be accepted"
    import_id = answer.json()["import_id"]
    assert answer.headers["Location"] == f"/imports/{import_id}"

    # Progress advances chunk by chunk, then every entry is queued (mapping does not wait for HAPI).
    seen: list[int] = []

    def done() -> dict[str, Any] | None:
        found = service.call("GET", f"/imports/{import_id}").json()
        seen.append(found["entries_queued"])
        return found if found["state"] == "done" else None

    imported = wait_until("the import is mapped and queued", done, seconds=120)
    assert (imported["lines_read"], imported["entries_queued"], imported["invalid"]) == (ENTRIES, ENTRIES, 0)
    assert imported["outbox_items"] == len(imported["outbox_ids"]) >= ENTRIES // 100
    assert len(set(seen)) >= 2 or seen == [ENTRIES], "progress was never seen between two chunks"
    assert not list((Path(service.env["FHIR_MIGRAINE_DB"]).parent / "imports").iterdir()), "the upload was kept"
    growth = {pid: memory(pid, "VmHWM") - before[pid] for pid in workers}
    assert max(growth.values()) < MEMORY_GROWTH_BOUND, {pid: f"{g / 2**20:.0f} MiB" for pid, g in growth.items()}
    print(f"upload accepted in {took:.2f} s; imported in {time.monotonic() - started:.1f} s; worker memory growth "
          + ", ".join(f"{g / 2**20:.1f} MiB" for g in growth.values()))

    # An order of another patient, queued behind the whole import, is sent while the import's
    # items still wait: the outbox interleaves the parts of large items with other items.
    order = example_orders(run_id, f"Patient/bulk-order-{run_id}")[0]
    queued = service.call("POST", "/orders", json=order)
    assert queued.status_code == 202, queued.text
    order_id = queued.json()["outbox_id"]
    posted = time.monotonic()
    deadline = posted + 90
    while service.call("GET", f"/outbox/{order_id}").json()["state"] != "sent" and time.monotonic() < deadline:
        time.sleep(0.2)
    sent = service.call("GET", f"/outbox/{order_id}").json()["state"] == "sent"
    states = [service.call("GET", f"/outbox/{item}").json()["state"] for item in imported["outbox_ids"]]
    waiting = sum(state in ("pending", "sending") for state in states)
    assert sent, f"the order was not sent within 90 s; {waiting} of the import's {len(states)} items still wait before it"
    print(f"order sent {time.monotonic() - posted:.1f} s after it was posted, {waiting} of {len(states)} import items waiting")
    assert waiting > 0, "every import item was sent before the order: the order waited behind the whole import"
    assert "dead" not in states

    # The logs name the import by its id and counts, never a patient or an entry of the diary.
    text = service.log.read_text()
    assert import_id in text
    leaked = [s for s in (f"bulk-{run_id}", f"Patient/bulk-{run_id}", f"bulk-order-{run_id}") if s in text]
    assert not leaked, leaked


def test_a_10000_entry_diary_posted_to_diary_is_refused_at_once_naming_the_bulk_path(
        service: Service, run_id: str) -> None:
    entries = [json.loads(line) for line in diary(run_id, f"Patient/bulk-{run_id}").splitlines()]
    started = time.monotonic()
    answer = service.call("POST", "/diary", json=entries)
    took = time.monotonic() - started
    assert answer.status_code == 413, answer.text[:300]
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert "POST /imports" in answer.json()["detail"] and "1000" in answer.json()["detail"]
    assert took < 10, f"the refusal took {took:.1f} s"
    assert service.call("GET", "/outbox").json()["items"] == []
