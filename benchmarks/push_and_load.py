"""Push throughput to the local HAPI server and the service's throughput under load.

1. Push: the same number of diary Observations sent to HAPI as transactions of 1, 10 and 100
   entries (conditional creates, fresh identifiers each round); resources per second for each,
   and the ratio to transactions of 1 (the baseline of this run).
2. Write strategies: the diary month (days with their attack, medication and hydration members)
   written to the same HAPI by the service's writer as transactions, as batches (one per
   dependency layer), one request per resource with ``If-None-Exist``, and one request per
   resource searching by identifier first (an EHR without conditional create); fresh identifiers
   each round, best of ``--rounds``; resources per second and the ratio to transactions.
3. Load: ``fhir-migraine serve`` (gunicorn, 2 workers, the outbox worker pushing to HAPI) takes
   ``POST /diary`` from concurrent clients in a second process on loopback; accepted requests per
   second and p50/p99 latency, against ``GET /health`` under the same load (the baseline).

Needs the local EHR: ``scripts/ehr start`` (or FHIR_MIGRAINE_TEST_EHR_URL).

    .venv/bin/python benchmarks/push_and_load.py [--resources 600] [--clients 50] [--seconds 10]

The service's outbox worker delivers what it accepts while the load runs, so the test EHR (on the
same cores) works during the ``POST /diary`` round but not during the ``/health`` one; with
``FHIR_MIGRAINE_WORKER=false`` in the environment the round measures the accepting path alone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fhir_migraine import operations  # noqa: E402
from fhir_migraine.ehr.capabilities import Capabilities, read_capabilities  # noqa: E402
from fhir_migraine.ehr.client import FhirClient  # noqa: E402
from fhir_migraine.ehr.writer import Writer  # noqa: E402
from fhir_migraine.inputs.diary_files import Located  # noqa: E402
from fhir_migraine.mapping.fhir import split_transaction  # noqa: E402
from local_ehr import ehr_url  # noqa: E402

MONTH = json.loads((ROOT / "examples" / "diary" / "month.json").read_text(encoding="utf-8"))
TOKEN = "benchmark-token"

LOAD_CLIENT = r"""
import json, sys, threading, time, requests
url, token, seconds, clients, path, body = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
payloads = json.loads(body) if body else None
latencies, statuses, lock = [], {}, threading.Lock()
stop_at = time.perf_counter() + seconds
def run(n):
    session = requests.Session()
    headers = {"Authorization": "Bearer " + token}
    i = 0
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        if payloads is None:
            r = session.get(url + path, headers=headers, timeout=30)
        else:
            payload = dict(payloads[i % len(payloads)], entry_id=f"load-{n}-{i}-{payloads[0]['entry_id']}")
            r = session.post(url + path, json=payload, headers=headers, timeout=30)
        elapsed = time.perf_counter() - started
        i += 1
        with lock:
            latencies.append(elapsed)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"latencies": latencies, "statuses": statuses, "seconds": seconds}))
"""


def diary_bundle(resources: int) -> dict:
    """``resources`` headache-free days: one Observation each, referencing nothing, so a
    transaction of size N holds exactly N entries."""
    run = uuid.uuid4().hex[:8]
    entries = [
        {"entry_id": f"bench-{run}-{i}", "patient": {"reference": f"Patient/bench-{run}"},
         "date": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}", "headache": None}
        for i in range(resources)
    ]
    return operations.map_diary([Located(e) for e in entries])


def push_benchmark(url: str, resources: int) -> list[tuple[int, int, float]]:
    client = FhirClient(url, timeout=120)
    client.transaction(diary_bundle(20))  # warm HAPI up before measuring
    rows = []
    for size in (1, 10, 100):
        bundle = diary_bundle(resources)
        parts = split_transaction(bundle, size)
        started = time.perf_counter()
        for part in parts:
            client.transaction(part)
        elapsed = time.perf_counter() - started
        rows.append((size, len(bundle["entry"]), elapsed))
    return rows


def month_bundle(patients: int = 4) -> dict:
    """The example diary month of ``patients`` patients, with fresh entry ids (so every write is a create)."""
    run = uuid.uuid4().hex[:8]
    entries = [dict(e, entry_id=f"{e['entry_id']}-{run}-{n}", patient={"reference": f"Patient/bench-{run}-{n}"})
               for n in range(patients) for e in MONTH]
    return operations.map_diary([Located(e) for e in entries])


def without_conditional_create(caps: Capabilities) -> Capabilities:
    """The same capabilities less conditional create: the writer searches by identifier first."""
    return Capabilities(caps.system, {t: replace(c, conditional_create=False) for t, c in caps.types.items()},
                        caps.digest + "-no-conditional")


def strategy_benchmark(url: str, rounds: int) -> list[tuple[str, int, float, int]]:
    """(strategy, resources, best seconds, requests) per strategy, the transaction first."""
    client = FhirClient(url, timeout=120)
    caps = read_capabilities(client.metadata())
    plain = without_conditional_create(caps)
    ways = [("transaction", "transaction", caps), ("batch", "batch", caps),
            ("per-resource (If-None-Exist)", "per-resource", caps),
            ("per-resource (search first)", "per-resource", plain)]
    Writer(client, lambda: caps, None, "transaction").write(split_transaction(month_bundle(), 100)[0])  # warm-up
    rows = []
    for name, strategy, found in ways:
        best, count = float("inf"), 0
        for _ in range(rounds):
            parts = split_transaction(month_bundle(), 100)
            count = sum(len(p["entry"]) for p in parts)
            counting = Counting(client)
            writer = Writer(counting, lambda found=found: found, None, strategy)  # type: ignore[misc]
            started = time.perf_counter()
            for part in parts:
                writer.write(part)
            best = min(best, time.perf_counter() - started)
        rows.append((name, count, best, counting.requests))
    return rows


class Counting:
    """The FHIR client, counting the requests the writer makes."""

    def __init__(self, client: FhirClient) -> None:
        self.client, self.requests, self.base_url = client, 0, client.base_url

    def __getattr__(self, name: str):
        found = getattr(self.client, name)
        if name in ("create", "update", "read", "transaction", "metadata"):
            def counted(*args, **kwargs):
                self.requests += 1
                return found(*args, **kwargs)
            return counted
        if name == "search":
            def searched(*args, **kwargs):
                for page in found(*args, **kwargs):
                    self.requests += 1
                    yield page
            return searched
        return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load(url: str, path: str, payloads: list | None, clients: int, seconds: float) -> dict:
    body = json.dumps(payloads) if payloads is not None else ""
    result = subprocess.run([sys.executable, "-c", LOAD_CLIENT, url, TOKEN, str(seconds), str(clients), path, body],
                            capture_output=True, text=True, check=True)
    data = json.loads(result.stdout)
    latencies = sorted(data["latencies"])
    return {
        "requests": len(latencies),
        "per_second": len(latencies) / data["seconds"],
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "statuses": data["statuses"],
    }


def service_benchmark(url: str, clients: int, seconds: float) -> tuple[dict, dict, dict]:
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, FHIR_MIGRAINE_DB=f"{folder}/service.sqlite3", FHIR_MIGRAINE_EHR_URL=url,
                   FHIR_MIGRAINE_API_TOKEN=TOKEN, FHIR_MIGRAINE_PORT=str(port))
        process = subprocess.Popen([sys.executable, "-m", "fhir_migraine.cli", "serve"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if requests.get(f"{base}/health", timeout=1).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.2)
            health = load(base, "/health", None, clients, seconds)
            diary = load(base, "/diary", MONTH[:10], clients, seconds)
            counts = requests.get(f"{base}/outbox?state=dead", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()["counts"]
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
    return health, diary, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=600)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each write strategy (the best counts)")
    args = parser.parse_args()
    url = ehr_url()

    rows = push_benchmark(url, args.resources)
    baseline = rows[0][1] / rows[0][2]
    print("push to HAPI (conditional-create transactions)")
    print(f"{'size':>6} {'resources':>10} {'seconds':>8} {'resources/s':>12} {'vs size 1':>10}")
    for size, count, elapsed in rows:
        print(f"{size:>6} {count:>10} {elapsed:>8.2f} {count / elapsed:>12.1f} {count / elapsed / baseline:>10.2f}")

    strategies = strategy_benchmark(url, args.rounds)
    first = strategies[0][1] / strategies[0][2]
    print("\nwrite strategies, the diary month (days with their members) to HAPI, best of "
          f"{args.rounds} rounds")
    print(f"{'strategy':>30} {'resources':>10} {'requests':>9} {'seconds':>8} {'resources/s':>12} {'vs transaction':>15}")
    for name, count, elapsed, calls in strategies:
        print(f"{name:>30} {count:>10} {calls:>9} {elapsed:>8.2f} {count / elapsed:>12.1f} {count / elapsed / first:>15.2f}")

    health, diary, counts = service_benchmark(url, args.clients, args.seconds)
    print(f"\nservice under load: {args.clients} clients in a second process, {args.seconds:g} s each")
    print(f"{'endpoint':>14} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for name, row in (("GET /health", health), ("POST /diary", diary)):
        print(f"{name:>14} {row['per_second']:>11.1f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f}  {row['statuses']}")
    print(f"POST /diary throughput / GET /health throughput = {diary['per_second'] / health['per_second']:.3f}")
    print(f"outbox after the run: {counts}")


if __name__ == "__main__":
    main()
