"""A group's pull from the local HAPI test EHR: FHIR Bulk Data's group export against one pull per
patient (the fall back), both unmapped into orders and diary entries, in the same run.

The group's patients are written first (the diary example ``month`` for each, fresh identifiers
each run, as transactions straight to the EHR), then the same group is pulled ``--rounds`` times
each way; the best round of each is reported as resources per second, with the ratio of bulk to
per-patient (the baseline of this run). Both ways must give the same resources for every patient,
or the benchmark stops.

Needs the local EHR: ``scripts/ehr start`` (or FHIR_MIGRAINE_TEST_EHR_URL).

    .venv/bin/python benchmarks/bulk_pull.py [--patients 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fhir_migraine import operations  # noqa: E402
from fhir_migraine.config import EhrSettings, Settings  # noqa: E402
from fhir_migraine.ehr.client import FhirClient  # noqa: E402
from fhir_migraine.ehr.gateway import EhrGateway  # noqa: E402
from fhir_migraine.inputs.diary_files import Located  # noqa: E402
from fhir_migraine.mapping.fhir import split_transaction  # noqa: E402
from local_ehr import ehr_url  # noqa: E402

MONTH = json.loads((ROOT / "examples" / "diary" / "month.json").read_text(encoding="utf-8"))


def seed(client: FhirClient, patients: list[str], run: str) -> int:
    """Each patient's month of diary written to the EHR; how many resources."""
    written = 0
    for number, patient in enumerate(patients):
        entries = [{**e, "entry_id": f"{e['entry_id']}-{run}-{number}", "patient": {"reference": patient}} for e in MONTH]
        bundle = operations.map_diary([Located(e) for e in entries])
        for part in split_transaction(bundle, 100):
            client.transaction(part)
        written += len(bundle["entry"])
    return written


def pull_round(gateway: EhrGateway, group: str) -> tuple[float, str, dict[str, int]]:
    """One pull of the group, unmapped: seconds, the method, resources per patient."""
    started = time.perf_counter()
    found = gateway.group_pull(group)
    counts = {line["patient"]: line["resources"] for line in gateway.unmapped(found)}
    return time.perf_counter() - started, found.method, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    url = ehr_url()
    client = FhirClient(url, timeout=120)
    run = uuid.uuid4().hex[:8]
    patients = [f"Patient/bench-{run}-{i}" for i in range(args.patients)]
    started = time.perf_counter()
    resources = seed(client, patients, run)
    print(f"seeded {resources} resources for {len(patients)} patients in {time.perf_counter() - started:.1f} s")
    group = f"Group/bench-{run}"
    client.put({"resourceType": "Group", "id": group.split("/")[1], "type": "person", "actual": True,
                "member": [{"entity": {"reference": p}} for p in patients]})

    with tempfile.TemporaryDirectory() as folder:
        base = Settings(database=str(Path(folder) / "bench.sqlite3"), ehr=EhrSettings(url=url, allow_http=True))
        ways = {"per-patient": replace(base, pull=replace(base.pull, bulk="never")), "bulk": base}
        best: dict[str, float] = {}
        seen: dict[str, dict[str, int]] = {}
        for _ in range(args.rounds):
            for way, settings in ways.items():
                seconds, method, counts = pull_round(EhrGateway.from_settings(settings), group)
                if method != way:
                    raise SystemExit(f"asked for {way}, the pull was made {method}")
                best[way] = min(best.get(way, seconds), seconds)
                if counts != seen.setdefault(way, counts):
                    raise SystemExit(f"two {way} pulls of the same group gave different resources")
    if seen["bulk"] != seen["per-patient"]:
        raise SystemExit("the bulk pull gave other resources than the per-patient pulls")
    total = sum(seen["bulk"].values())
    if total != resources:
        raise SystemExit(f"pulled {total} resources, {resources} were written")
    rates = {way: total / seconds for way, seconds in best.items()}
    report: dict[str, Any] = {"patients": len(patients), "resources": total, "rounds": args.rounds,
                              "per_patient": {"seconds": round(best["per-patient"], 2),
                                              "resources_per_s": round(rates["per-patient"], 1)},
                              "bulk": {"seconds": round(best["bulk"], 2), "resources_per_s": round(rates["bulk"], 1)},
                              "bulk_over_per_patient": round(rates["bulk"] / rates["per-patient"], 2)}
    print(f"{'way':<12} {'best s':>8} {'resources/s':>12} {'ratio':>7}")
    for way in ("per-patient", "bulk"):
        print(f"{way:<12} {best[way]:>8.2f} {rates[way]:>12.1f} {rates[way] / rates['per-patient']:>7.2f}")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
