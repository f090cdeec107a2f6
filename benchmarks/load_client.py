"""The load client of benchmarks/push_and_load.py, run as a process of its own so that it does not
share the interpreter of the benchmark: ``clients`` threads, each sending requests one after the
other for ``seconds``, spread round robin over one or more base URLs (comma-separated). Prints one
JSON object: every latency in seconds, the count of each status and the duration.

    python benchmarks/load_client.py BASES TOKEN SECONDS CLIENTS PATH BODY

``BODY`` empty: ``GET PATH``; else a JSON list of diary entries, posted in turn with entry ids of
this run alone (so rounds on the same EHR never send an entry twice).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid

import requests


def base_for(bases: list[str], thread: int, request: int) -> str:
    """The base URL of a thread's ``request``-th request: the threads start on different bases and
    each moves on to the next one after every request, so each base takes an even share."""
    return bases[(thread + request) % len(bases)]


def main(argv: list[str]) -> None:
    bases = argv[1].split(",")
    token, seconds, clients, path, body = argv[2], float(argv[3]), int(argv[4]), argv[5], argv[6]
    payloads = json.loads(body) if body else None
    run_id = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def run(n: int) -> None:
        session = requests.Session()
        headers = {"Authorization": "Bearer " + token}
        i = 0
        while time.perf_counter() < stop_at:
            url = base_for(bases, n, i) + path
            started = time.perf_counter()
            if payloads is None:
                r = session.get(url, headers=headers, timeout=30)
            else:
                payload = dict(payloads[i % len(payloads)], entry_id=f"load-{run_id}-{n}-{i}-{payloads[0]['entry_id']}")
                r = session.post(url, json=payload, headers=headers, timeout=30)
            elapsed = time.perf_counter() - started
            i += 1
            with lock:
                latencies.append(elapsed)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"latencies": latencies, "statuses": statuses, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv)
