"""The example diary month: JSON, NDJSON and CSV map to the same golden Bundle, which parses
as FHIR R4 and unmaps to the entries exactly."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from fhir_migraine.mapping.fhir import identifiers
from tests.conftest import EXAMPLES
from tests.helpers import run_cli

DIARY = EXAMPLES / "diary"
GOLDEN = DIARY / "month.bundle.json"


@pytest.mark.parametrize("name", ["month.json", "month.ndjson", "month.csv"])
def test_each_form_of_the_month_prints_the_golden_bundle(name: str) -> None:
    run = run_cli("map", "diary", str(DIARY / name))
    assert run.code == 0, run.err
    assert run.out == GOLDEN.read_text(encoding="utf-8")


def test_the_golden_bundle_parses_as_fhir_r4() -> None:
    bundle = Bundle.model_validate(json.loads(GOLDEN.read_text(encoding="utf-8")))
    assert bundle.type == "transaction"
    assert all(e.request.ifNoneExist.startswith("identifier=") for e in bundle.entry)


def test_unmap_gives_back_the_entries_exactly() -> None:
    run = run_cli("unmap", str(GOLDEN))
    assert run.code == 0, run.err
    assert run.json() == {"orders": [], "diary": json.loads((DIARY / "month.json").read_text(encoding="utf-8"))}


def test_the_month_has_what_clinicians_asked_to_see() -> None:
    entries = json.loads((DIARY / "month.json").read_text(encoding="utf-8"))
    attacks = [e["headache"] for e in entries if e.get("headache")]
    assert any(e.get("headache", 0) is None for e in entries), "a headache-free day"
    assert any(a["start"][:10] != a["end"][:10] for a in attacks if "end" in a), "an attack crossing midnight"
    assert any(a["start"][-6:] != a["end"][-6:] for a in attacks if "end" in a), "an attack across a DST change"
    assert any("end" not in a for a in attacks), "an ongoing attack"
    reliefs = [{m.get("relief_2h") for m in e.get("medications", [])} for e in entries]
    assert any({True, False} <= r for r in reliefs), "one medicine that helped and one that did not"
    products = {d["product"] for e in entries for d in e.get("hydration", [])}
    assert {"MigraKet", "Liquid IV"} <= products
    assert any("infusion" in e for e in entries)


def test_out_ndjson_writes_one_bundle_per_entry() -> None:
    run = run_cli("map", "diary", str(DIARY / "month.ndjson"), "--out-ndjson")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert len(lines) == 30
    together = [e for line in lines for e in json.loads(line)["entry"]]
    assert together == json.loads(GOLDEN.read_text(encoding="utf-8"))["entry"]


def test_a_re_sent_month_keeps_its_identifiers() -> None:
    first = run_cli("map", "diary", str(DIARY / "month.csv")).json()
    again = run_cli("map", "diary", str(DIARY / "month.csv")).json()
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in again["entry"]]
    # A QuestionnaireResponse has one identifier (R4), the other resources a list.
    values = [identifiers(e["resource"])[0]["value"] for e in first["entry"]]
    assert len(values) == len(set(values))


ATTACKS_GOLDEN = DIARY / "attacks.bundle.json"


@pytest.mark.parametrize("name", ["attacks.json", "attacks.ndjson", "attacks.csv"])
def test_each_form_of_the_attacks_example_prints_its_golden_bundle(name: str) -> None:
    run = run_cli("map", "diary", str(DIARY / name))
    assert run.code == 0, run.err
    assert run.out == ATTACKS_GOLDEN.read_text(encoding="utf-8")


def test_the_attacks_example_unmaps_to_its_entries_exactly() -> None:
    run = run_cli("unmap", str(ATTACKS_GOLDEN))
    assert run.code == 0, run.err
    assert run.json() == {"orders": [], "diary": json.loads((DIARY / "attacks.json").read_text(encoding="utf-8"))}


def test_the_attacks_example_has_what_it_is_there_to_show() -> None:
    entries = json.loads((DIARY / "attacks.json").read_text(encoding="utf-8"))
    assert any(len(e.get("attacks", [])) > 1 for e in entries), "several attacks in one entry"
    records = [a for e in entries for a in ([e["headache"]] if e.get("headache") else e.get("attacks", []))]
    assert any("continues" in a for a in records), "an attack continued in a later entry"
    assert any("id" in a and a["start"][:10] != a.get("end", a["start"])[:10] for a in records), "an attack past midnight"
    assert any(e.get("headache", 0) is None for e in entries) and any("headache" not in e and "attacks" not in e for e in entries)


def _attack_times(entries: list[dict[str, Any]]) -> list[tuple[datetime, datetime]]:
    """Each attack's time, its records joined by patient and id: from the first start to the
    latest end or start of any record (independently of the mapping)."""
    joined: dict[tuple[str, str], list[dict[str, Any]]] = {}
    times = []
    for entry in entries:
        for record in [entry["headache"]] if entry.get("headache") else entry.get("attacks", []):
            name = record.get("id") or record.get("continues")
            if name is None:
                start = datetime.fromisoformat(record["start"])
                times.append((start, datetime.fromisoformat(record.get("end", record["start"]))))
            else:
                joined.setdefault((json.dumps(entry["patient"]), name), []).append(record)
    for records in joined.values():
        starts = [datetime.fromisoformat(r["start"]) for r in records]
        first = min(starts)
        latest = max([datetime.fromisoformat(r["end"]) for r in records if "end" in r] + starts)
        times.append((first, latest))
    return times


def overlapped_days(entries: list[dict[str, Any]]) -> set[date]:
    """Every local day (in the offset of the attack's start) an attack's time covers, stepping
    through it a minute at a time."""
    days: set[date] = set()
    for start, end in _attack_times(entries):
        days.add(start.date())
        moment = start
        while moment < end.astimezone(start.tzinfo):
            days.add(moment.date())
            moment += timedelta(minutes=1)
    return days


@pytest.mark.parametrize("name", ["month", "attacks"])
def test_the_examples_map_with_the_headache_days_an_overlap_count_gives(name: str) -> None:
    entries = json.loads((DIARY / f"{name}.json").read_text(encoding="utf-8"))
    bundle = json.loads((DIARY / f"{name}.bundle.json").read_text(encoding="utf-8"))
    days = [e["resource"] for e in bundle["entry"] if e["resource"].get("code", {}).get("coding", [{}])[0].get("code") == "diary-day"]
    said = {date.fromisoformat(d["effectiveDateTime"]) for d in days if d.get("valueBoolean") is True}
    recorded = {date.fromisoformat(e["date"]) for e in entries}
    assert said == overlapped_days(entries) & recorded
    assert said > {date.fromisoformat(e["date"]) for e in entries if e.get("headache") or e.get("attacks")}, \
        "a day another entry's attack runs into"
    summary = run_cli("summary", str(DIARY / f"{name}.json")).json()
    assert summary["headache_days"] == len(overlapped_days(entries))
    assert summary["attacks"] == len(_attack_times(entries))
