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
4. Instances (``--store postgresql``, instead of 1-3): ``POST /diary`` on one instance on SQLite
   (the baseline), then on 1, 2 and 3 instances (``--instances``) sharing one database (a new one
   each round) of a throwaway PostgreSQL cluster (tests/postgres.py, fsync on), the load client
   (benchmarks/load_client.py) spreading its requests round robin over their ports, each round
   after ``--warmup`` seconds of load not counted; accepted requests per second, p50/p99 and
   the ratios of throughput and p99 to the baseline; every service and the cluster stopped at the
   end, also on Ctrl-C or SIGTERM.

Needs the local EHR: ``scripts/ehr start`` (or FHIR_MIGRAINE_TEST_EHR_URL).

    .venv/bin/python benchmarks/push_and_load.py [--resources 600] [--clients 50] [--seconds 10]
    .venv/bin/python benchmarks/push_and_load.py --store postgresql [--instances 1,2,3] [--seconds 10] [--warmup 1]

The service's outbox worker delivers what it accepts while the load runs, so the test EHR (on the
same cores) works during the ``POST /diary`` round but not during the ``/health`` one; with
``FHIR_MIGRAINE_WORKER=false`` in the environment the round measures the accepting path alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
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

LOAD_CLIENT = ROOT / "benchmarks" / "load_client.py"
MAX_INSTANCES = 8


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


def parse_instances(text: str) -> list[int]:
    """``--instances``: how many service instances each round runs, comma-separated (``1,2,3``)."""
    counts = []
    for part in text.split(","):
        part = part.strip()
        if not re.fullmatch(r"[0-9]{1,3}", part) or not 1 <= int(part) <= MAX_INSTANCES:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a number of instances from 1 to {MAX_INSTANCES} (a list such as 1,2,3)")
        counts.append(int(part))
    return counts


def summarise(latencies: list[float], statuses: dict[str, int], seconds: float) -> dict:
    """Requests and accepted (2xx) requests per second, p50 and p99 latency in milliseconds."""
    ordered = sorted(latencies)
    accepted = sum(count for status, count in statuses.items() if 200 <= int(status) < 300)
    return {
        "requests": len(ordered),
        "per_second": len(ordered) / seconds,
        "accepted_per_second": accepted / seconds,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else float("nan"),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else float("nan"),
        "statuses": statuses,
    }


def load(bases: list[str], path: str, payloads: list | None, clients: int, seconds: float) -> dict:
    """``clients`` threads of one client process on ``path`` for ``seconds``, round robin over ``bases``."""
    body = json.dumps(payloads) if payloads is not None else ""
    result = subprocess.run([sys.executable, str(LOAD_CLIENT), ",".join(bases), TOKEN, str(seconds), str(clients), path,
                             body], capture_output=True, text=True, check=True)
    data = json.loads(result.stdout)
    return summarise(data["latencies"], data["statuses"], data["seconds"])


class Instance:
    """``fhir-migraine serve`` (gunicorn, ``FHIR_MIGRAINE_WORKERS`` workers, the outbox worker on) as a
    process group of its own on a loopback port, on ``database``: a SQLite file, or a PostgreSQL URL
    that several instances share."""

    def __init__(self, folder: Path, ehr: str, database: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = folder / "service.log"
        self.env = dict(os.environ, FHIR_MIGRAINE_DB=database, FHIR_MIGRAINE_EHR_URL=ehr, FHIR_MIGRAINE_API_TOKEN=TOKEN,
                        FHIR_MIGRAINE_PORT=str(self.port), FHIR_MIGRAINE_IMPORT_DIR=str(folder / "imports"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Instance:
        """Started, and answering ``GET /health``; an error with the end of its log otherwise."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "fhir_migraine.cli", "serve"], env=self.env,
                                            stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(f"{self.base}/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the service on port {self.port} did not start:\n{self.log.read_text()[-2000:]}")

    def get(self, path: str) -> dict:
        answer = requests.get(f"{self.base}{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        answer.raise_for_status()
        found: dict = answer.json()
        return found

    def terminate(self) -> None:
        """SIGTERM to its process group (gunicorn stops its workers, each its outbox worker)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> None:
        """Terminated and ended: SIGKILL to the process group if it has not ended within ``timeout``."""
        if self.process is None:
            return
        self.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def service_benchmark(url: str, clients: int, seconds: float) -> tuple[dict, dict, dict]:
    with tempfile.TemporaryDirectory() as folder:
        service = Instance(Path(folder), url, f"{folder}/service.sqlite3")
        try:
            service.start()
            health = load([service.base], "/health", None, clients, seconds)
            diary = load([service.base], "/diary", MONTH[:10], clients, seconds)
            counts = service.get("/outbox?state=dead")["counts"]
        finally:
            service.stop()
    return health, diary, counts


def instances_round(folder: Path, url: str, databases: list[str], clients: int, seconds: float, warmup: float) -> dict:
    """One instance per database given (the same URL repeated: instances sharing it), started one
    after the other; ``warmup`` seconds of ``POST /diary`` not counted, then ``seconds`` measured,
    the requests spread round robin over the instances' ports. The outbox counts at the end of the
    round (of the first instance's database) come with the row."""
    running: list[Instance] = []
    try:
        for n, database in enumerate(databases):
            place = folder / f"instance-{n}"
            place.mkdir()
            running.append(Instance(place, url, database))
            running[-1].start()
        bases = [instance.base for instance in running]
        if warmup > 0:
            load(bases, "/diary", MONTH[:10], clients, warmup)
        row = load(bases, "/diary", MONTH[:10], clients, seconds)
        outbox = running[0].get("/ready").get("outbox", {})
        row["outbox"] = {k: v for k, v in outbox.items() if k != "oldest_pending_age_s"}
        return row
    finally:
        for instance in running:
            instance.terminate()  # all at once, then each waited for
        for instance in running:
            instance.stop()


def store_benchmark(url: str, counts: list[int], clients: int, seconds: float, warmup: float) -> list[tuple[str, int, dict]]:
    """The baseline (one instance on SQLite), then a round of each count of instances on one
    PostgreSQL cluster of this run, each round on a new database its instances share."""
    sys.path.insert(0, str(ROOT))
    from tests.postgres import Cluster  # the throwaway cluster of the tests

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        place = Path(folder) / "sqlite"
        place.mkdir()
        rows.append(("SQLite", 1, instances_round(place, url, [str(place / "service.sqlite3")], clients, seconds, warmup)))
        try:
            cluster = Cluster()  # PostgreSQL's own settings (fsync on), as SQLite keeps its own
        except FileNotFoundError as error:
            raise SystemExit(str(error)) from None
        try:
            cluster.start()
            for n, count in enumerate(counts):
                place = Path(folder) / f"postgresql-{n}"
                place.mkdir()
                database = cluster.new_database()
                rows.append(("PostgreSQL", count, instances_round(place, url, [database] * count, clients, seconds, warmup)))
        finally:
            try:
                cluster.stop()
            except RuntimeError as error:  # already gone (a Ctrl-C reaches its server too): its folder is removed
                print(f"stopping PostgreSQL: {error}", file=sys.stderr)
            shutil.rmtree(cluster.folder, ignore_errors=True)
    return rows


def print_store_rows(rows: list[tuple[str, int, dict]], clients: int, seconds: float, warmup: float) -> None:
    base = rows[0][2]
    print(f"POST /diary: {clients} clients in one process, round robin over the instances' ports, {seconds:g} s per round "
          f"after {warmup:g} s of warm-up; ratios to one instance on SQLite")
    print(f"{'store':>10} {'instances':>9} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'/s vs SQLite':>13} "
          f"{'p99 vs SQLite':>14}  statuses; outbox at the end")
    for store, count, row in rows:
        throughput = row["accepted_per_second"] / base["accepted_per_second"] if base["accepted_per_second"] else float("nan")
        p99 = row["p99_ms"] / base["p99_ms"]
        print(f"{store:>10} {count:>9} {row['accepted_per_second']:>11.1f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} "
              f"{throughput:>13.2f} {p99:>14.2f}  {row['statuses']}; {row['outbox']}")


def interrupted(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C: the ``finally`` blocks stop every service and the cluster."""
    raise KeyboardInterrupt


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The options; with ``--store postgresql``, ``instances`` is the list of rounds (1,2,3 unless given)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=600)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each write strategy (the best counts)")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite",
                        help="postgresql: only the load, one instance on SQLite against rounds of instances sharing "
                             "one PostgreSQL")
    parser.add_argument("--instances", type=parse_instances, default=None,
                        help="with --store postgresql: the instances of each round, comma-separated (default 1,2,3)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="with --store postgresql: seconds of load before each measured round (default 1)")
    args = parser.parse_args(argv)
    if args.store == "sqlite" and args.instances is not None:
        parser.error("--instances needs --store postgresql (instances on SQLite have a database each)")
    if not args.seconds > 0 or args.clients < 1 or not args.warmup >= 0:
        parser.error("--seconds must be above 0, --clients at least 1, --warmup not below 0")
    if args.store == "postgresql" and args.instances is None:
        args.instances = [1, 2, 3]
    return args


def main() -> None:
    args = arguments()
    signal.signal(signal.SIGTERM, interrupted)
    url = ehr_url()

    if args.store == "postgresql":
        rows = store_benchmark(url, args.instances, args.clients, args.seconds, args.warmup)
        print_store_rows(rows, args.clients, args.seconds, args.warmup)
        return

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
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
