"""No patient data reaches the service's output, whatever writes it: a worker time-out with a
patient's request in flight, and requests gunicorn itself refuses (a bad request line, method,
version or header, headers too large, headers never finished), each naming distinctive patient
ids in its path, query and headers. Every line of stdout and stderr is scanned for them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.faultproxy import Slow
from tests.security.edge import TOKEN, Trickle, exchange, running_service, worker_pids

pytestmark = pytest.mark.ehr


def wait_for(condition, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_no_patient_id_reaches_the_logs_through_gunicorn(tmp_path: Path, ehr_url: str, run_id: str) -> None:
    secret = f"phi{run_id}"  # every id below starts with it
    with running_service(tmp_path, ehr_url, READ_TIMEOUT="2", HUNG_WORKER_TIMEOUT="2") as (service, proxy):
        # A worker time-out while a patient's diary is being pulled from a hanging EHR.
        proxy.set_mode(Slow(20.0))
        pull = threading.Thread(daemon=True, target=lambda: requests.get(
            f"{service.url}/patients/Patient/{secret}-pull/diary?since={secret}-since",
            headers={"Authorization": f"Bearer {TOKEN}", "X-Patient": f"{secret}-pull-header"}, timeout=30))
        pull.start()
        time.sleep(0.5)
        stopped = worker_pids(service)
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(lambda: "WORKER TIMEOUT" in service.log.read_text(), "gunicorn never timed a worker out")
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):  # already killed by the master
                    os.kill(pid, signal.SIGCONT)
        proxy.set_mode(None)
        wait_for(lambda: not set(stopped) & set(worker_pids(service)) and len(worker_pids(service)) == 2,
                 "the timed-out workers were not replaced")
        wait_for(lambda: requests.get(f"{service.url}/health", timeout=2).ok, "no worker answers after the time-out")

        # Requests gunicorn refuses before the app, each naming the patient.
        refused = {
            "request line": f"GET /patients/{secret}-line\r\n\r\n",
            "method": f"G@T /patients/{secret}-method HTTP/1.1\r\nHost: x\r\n\r\n",
            "version": f"GET /patients/{secret}-version HTTP/9.9\r\nHost: x\r\n\r\n",
            "header without colon": f"GET /patients/{secret}-hdr/diary HTTP/1.1\r\nX-Patient {secret}-hdrvalue\r\n\r\n",
            "header name": f"GET /patients/{secret}-name/diary HTTP/1.1\r\nX(Patient): {secret}-namevalue\r\n\r\n",
            "header too large": f"GET /patients/{secret}-big/diary?since={secret}-q HTTP/1.1\r\n"
                                f"X-Patient: {secret}-bigvalue{'a' * 20000}\r\n\r\n",
            "route with query": f"GET /patients/Patient/{secret}-path/diary?since={secret}-query HTTP/1.1\r\n"
                                f"Host: x\r\nX-Patient: {secret}-value\r\n\r\n",
        }
        for what, request in refused.items():
            answer = exchange(service.port, request.encode("latin-1"))
            assert answer.startswith(b"HTTP/1.1 4"), (what, answer[:100])
            assert secret.encode() not in answer, f"the answer to a bad {what} echoes it"
        slow = Trickle(service.port, f"GET /patients/Patient/{secret}-slow/diary?since={secret}-slowq HTTP/1.1\r\n"
                       .encode(), f"X-Patient: {secret}-slowvalue\r\n".encode(), every=1.0)
        slow.start()
        slow.join(10)
        assert slow.answer.startswith(b"HTTP/1.1 408")
        pull.join(30)
    time.sleep(0.5)

    lines = [line for line in service.log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    assert any("WORKER TIMEOUT" in line for line in lines)
    assert any("request refused before the app" in line for line in lines)
    for line in lines:
        json.loads(line)  # every line of stdout and stderr is one of the project's JSON lines
    leaked = [line for line in lines if secret in line]
    assert not leaked, leaked[:5]
