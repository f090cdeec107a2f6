"""Validation throughput: the engine in-process against HAPI FHIR's ``$validate`` over loopback,
on the same resources, in one run.

The corpus is the validation corpus of the tests (valid examples and golden outputs, and the
invalid variants), each validated against its profile. The engine runs in this process pinned
to one core, in rounds; every round is printed, and the best and the median: the best round is
its speed with the least interference from the rest of the machine (whose speed varies from
minute to minute here), the median shows that variation. Measured in the same run: the engine's
closures alone (the structure walk then the profile walk, which the generated single pass
replaced), and HAPI (the local test EHR, with the project's profiles uploaded), which answers
one request at a time.

    .venv/bin/python benchmarks/validation.py [--rounds 9] [--seconds 1.0] [--hapi-passes 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from local_ehr import ehr_url  # noqa: E402
from fhir_migraine.validation.engine import Validator  # noqa: E402


def corpus() -> list[tuple[dict, str]]:
    """(resource, profile canonical) pairs of the cross-check corpus, Bundles left out."""
    from tests.validation_corpus import cases  # the corpus of the HAPI cross-check

    return [(case.resource, case.profile) for case in cases() if case.profile is not None]


def upload_package(url: str) -> None:
    session = requests.Session()
    for pattern in ("CodeSystem-*.json", "ValueSet-*.json", "StructureDefinition-*.json"):
        for path in sorted((ROOT / "profiles").glob(pattern)):
            resource = json.loads(path.read_text())
            answer = session.put(f"{url}/{resource['resourceType']}/{resource['id']}", json=resource,
                                 headers={"Content-Type": "application/fhir+json"}, timeout=60)
            answer.raise_for_status()


def engine_rates(resources: list[tuple[dict, str]], rounds: int, seconds: float, *, single_pass: bool = True) -> list[float]:
    """Resources per second in each round of ``seconds``, on one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    validator = Validator.load(single_pass=single_pass)
    for resource, profile in resources:  # warm-up: the checks are written on first use
        validator.validate(resource, profile=profile)
    rates = []
    for _ in range(rounds):
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for resource, profile in resources:
                validator.validate(resource, profile=profile)
            done += len(resources)
        rates.append(done / (time.perf_counter() - started))
    return rates


def hapi_rate(url: str, resources: list[tuple[dict, str]], passes: int) -> tuple[float, int]:
    session = requests.Session()
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}

    def once(resource: dict, profile: str) -> None:
        answer = session.post(f"{url}/{resource['resourceType']}/$validate", params={"profile": profile},
                              data=json.dumps(resource), headers=headers, timeout=120)
        # HAPI answers 200 with the outcome, or 400 when its parser already refuses the JSON.
        if answer.status_code not in (200, 400, 412, 422) or answer.json().get("resourceType") != "OperationOutcome":
            answer.raise_for_status()

    for resource, profile in resources[:5]:  # warm-up: HAPI builds snapshots on first use
        once(resource, profile)
    done, started = 0, time.perf_counter()
    for _ in range(passes):
        for resource, profile in resources:
            once(resource, profile)
        done += len(resources)
    return done / (time.perf_counter() - started), done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="rounds of the engine")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of a round")
    parser.add_argument("--hapi-passes", type=int, default=1, help="passes over the corpus through HAPI")
    args = parser.parse_args()
    resources = corpus()
    url = ehr_url()
    upload_package(url)
    # The engine first: HAPI's JVM keeps compiling and collecting for a while after requests.
    engine = engine_rates(resources, args.rounds, args.seconds)
    closures = engine_rates(resources, args.rounds, args.seconds, single_pass=False)
    hapi, hapi_count = hapi_rate(url, resources, args.hapi_passes)
    best, median = max(engine), statistics.median(engine)
    print(f"corpus: {len(resources)} resources (valid and invalid), each against its profile")
    print("engine rounds (resources/s):        " + ", ".join(f"{rate:.0f}" for rate in engine))
    print("closures-only rounds (resources/s): " + ", ".join(f"{rate:.0f}" for rate in closures))
    print(f"{'validator':>34} {'best round':>12} {'median':>10}")
    print(f"{'HAPI $validate (loopback)':>34} {hapi:>12.1f} {hapi:>10.1f}   (one pass, {hapi_count} resources)")
    print(f"{'engine, closures only (1 core)':>34} {max(closures):>12.1f} {statistics.median(closures):>10.1f}")
    print(f"{'engine (1 core)':>34} {best:>12.1f} {median:>10.1f}")
    print(f"engine / HAPI = {best / hapi:.1f} (best round), {median / hapi:.1f} (median)")
    print(f"engine / closures only = {best / max(closures):.2f} (best rounds), "
          f"{median / statistics.median(closures):.2f} (medians)")
    # The best round is the engine's speed with the least interference from the rest of the
    # machine (the reading timeit recommends); the median shows what interference did.
    print(f"target 10,000 resources/s on one core: {'met' if best >= 10_000 else 'not met'} "
          f"(best round {best:.0f}; median {median:.0f})")
    print(f"target 50 x HAPI: {'met' if median / hapi >= 50 else 'not met'} (median)")


if __name__ == "__main__":
    main()
