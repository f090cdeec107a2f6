"""Metrics over several processes: what each process counts adds up in one scrape, in two plain
processes sharing a folder, and in ``fhir-migraine serve`` with two gunicorn workers (replaced
midway, so the last scrape can only be right if it adds up the files of workers that have gone).
The folder is private (0700) and removed when the service stops. Loopback only, bounded."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.api.test_metrics import parse, value
from tests.conftest import PROTOCOLS
from tests.postgres import free_port

TOKEN = "metrics-workers-api-token"
METRICS_TOKEN = "metrics-workers-scraper-token"

COUNT = """
import sys
from fhir_migraine import metrics
for _ in range(int(sys.argv[1])):
    metrics.count_delivery("2xx")
    metrics.observe_request("/diary", "POST", 202, 0.01)
"""
SHOW = "import sys; from fhir_migraine import metrics; sys.stdout.write(metrics.exposition().decode())"


def test_two_processes_sharing_a_folder_add_up(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir(mode=0o700)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    counting = [subprocess.Popen([sys.executable, "-c", COUNT, str(n)], env=env) for n in (3, 4)]
    assert [p.wait(60) for p in counting] == [0, 0]
    shown = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, timeout=60, check=True)
    samples = parse(shown.stdout)
    assert value(samples, "fhir_migraine_outbox_deliveries_total", status_class="2xx") == 7
    route = {"route": "/diary", "method": "POST", "status_class": "2xx"}
    assert value(samples, "fhir_migraine_http_request_duration_seconds_count", **route) == 7
    assert len({p.name.rsplit("_", 1)[1] for p in folder.glob("counter_*.db")}) == 2  # one file per process


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_MIGRAINE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(TMPDIR=str(temp), FHIR_MIGRAINE_DB=str(tmp_path / "service.sqlite3"),
               FHIR_MIGRAINE_SEED_PROTOCOLS=str(PROTOCOLS), FHIR_MIGRAINE_API_TOKEN=TOKEN,
               FHIR_MIGRAINE_API_METRICS_TOKEN=METRICS_TOKEN, FHIR_MIGRAINE_WORKERS="2")
    log = (tmp_path / "service.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", "fhir_migraine.cli", "serve", "--port", str(port)],
                               env=env, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: requests.get(f"{url}/ready", timeout=1).ok and len(_children(process.pid)) == 2)
        yield process, url, temp
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()


def _wait(ready: object, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if ready():  # type: ignore[operator]
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("the service did not come up in time")


def _health_count(url: str) -> float:
    answer = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert answer.status_code == 200
    route = {"route": "/health", "method": "GET", "status_class": "2xx"}
    return value(parse(answer.text), "fhir_migraine_http_request_duration_seconds_count", **route)


def test_two_gunicorn_workers_add_up_even_after_they_are_replaced(service: tuple[subprocess.Popen[bytes], str, Path]) -> None:
    process, url, temp = service
    folders = list(temp.glob("fhir-migraine-metrics-*"))
    assert len(folders) == 1 and stat.S_IMODE(folders[0].stat().st_mode) == 0o700
    assert requests.get(f"{url}/metrics", timeout=10).status_code == 401
    start = _health_count(url)
    for _ in range(20):
        assert requests.get(f"{url}/health", timeout=10).ok
    assert _health_count(url) == start + 20

    first = _children(process.pid)
    for pid in first:  # gunicorn replaces each worker; their counts stay in their files
        os.kill(pid, signal.SIGTERM)
    _wait(lambda: len(_children(process.pid)) == 2 and not _children(process.pid) & first
          and requests.get(f"{url}/ready", timeout=1).ok)
    for _ in range(15):
        assert requests.get(f"{url}/health", timeout=10).ok
    for _ in range(3):  # whichever new worker answers, the sum is the same
        assert _health_count(url) == start + 35
    writers = {p.name.rsplit("_", 1)[1] for p in folders[0].glob("histogram_*.db")}
    assert len(writers) >= 2

    os.killpg(process.pid, signal.SIGTERM)
    process.wait(30)
    assert not folders[0].exists(), "the metrics folder is removed when the service stops"
