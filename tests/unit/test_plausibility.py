"""Plausibility warnings of a diary: each rule with an entry that trips it and one that does not;
warnings never stop the diary, and reach the CLI's stderr and the API's answers."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine import operations
from fhir_migraine.cli import main
from fhir_migraine.inputs.diary_files import Located
from tests.conftest import EXAMPLES

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PATIENT = {"reference": "Patient/5"}


def entry(day: str, *, headache: Any = None, medications: list[dict[str, Any]] | None = None, n: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = {"entry_id": f"pl-{day}-{n}", "patient": PATIENT, "date": day, "headache": headache}
    if medications:
        found["medications"] = medications
    return found


def attack(start: str, end: str | None = None) -> dict[str, Any]:
    return {"start": start, **({"end": end} if end else {})}


def med(drug: str, dose: str, at: str, route: str = "oral") -> dict[str, Any]:
    return {"drug": drug, "dose": dose, "route": route, "taken_at": at}


def warned(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    _, outcome = operations.map_diary_with_warnings([Located(e, f"$[{i}]") for i, e in enumerate(entries)], now=NOW)
    return [(i["expression"][0], i["diagnostics"]) for i in (outcome or {}).get("issue", [])]


def test_the_example_month_warns_only_of_the_two_days_an_attack_runs_into() -> None:
    # 25 Oct and 1 Nov say headache-free, but the attacks of 24 Oct and 31 Oct run past midnight into
    # them: their day Observations say headache day, and the mapper says so (no other warning).
    month = json.loads((EXAMPLES / "diary" / "month.json").read_text(encoding="utf-8"))
    found = warned(month)
    assert [path for path, _ in found] == ["$[7].headache", "$[14].headache"]
    assert "p123-2026-10-24" in found[0][1] and "p123-2026-10-31" in found[1][1]


def test_a_triptan_on_a_headache_free_day_far_from_any_attack_is_warned_of() -> None:
    lone = entry("2026-11-03", medications=[med("sumatriptan", "50 mg", "2026-11-03T09:00:00+01:00")])
    [(path, message)] = warned([lone])
    assert path == "$[0].medications[0].taken_at" and "headache-free day" in message
    # Within 6 hours of an attack recorded the day before (which ran past midnight): no medication
    # warning; only that the attack makes the "headache-free" day a headache day.
    night = entry("2026-11-02", headache=attack("2026-11-02T22:00:00+01:00", "2026-11-03T04:00:00+01:00"), n=1)
    assert [path for path, _ in warned([night, lone])] == ["$[1].headache"]
    # A supplement on a headache-free day is what it is for.
    assert warned([entry("2026-11-03", medications=[med("magnesium oxide", "400 mg", "2026-11-03T09:00:00+01:00")])]) == []


@pytest.mark.parametrize(("doses", "route", "expected"), [
    (["100 mg", "100 mg"], "oral", None), (["100 mg", "100 mg", "100 mg"], "oral", "$[0].medications[2].dose"),
    (["6 mg", "6 mg"], "subcutaneous", None), (["6 mg", "6 mg", "6 mg"], "subcutaneous", "$[0].medications[2].dose"),
    (["300 mg"], "oral", "$[0].medications[0].dose"), (["0.3 g"], "oral", "$[0].medications[0].dose"),
])
def test_more_than_the_labelled_daily_maximum_is_warned_of_at_the_dose_that_passes_it(
        doses: list[str], route: str, expected: str | None) -> None:
    day = entry("2026-11-05", headache=attack("2026-11-05T06:00:00+01:00", "2026-11-05T23:00:00+01:00"),
                medications=[med("sumatriptan", d, f"2026-11-05T{7 + 2 * i:02d}:00:00+01:00", route) for i, d in enumerate(doses)])
    found = [w for w in warned([day]) if w[0].endswith(".dose")]
    if expected is None:
        assert found == []
    else:
        assert [p for p, _ in found] == [expected] and "more than the labelled" in found[0][1]


def test_a_route_the_label_does_not_give_the_drug_by_is_warned_of() -> None:
    day = entry("2026-11-05", headache=attack("2026-11-05T06:00:00+01:00", "2026-11-05T12:00:00+01:00"),
                medications=[med("sumatriptan", "5000 mg", "2026-11-05T07:00:00+01:00", "intravenous")])
    paths = [p for p, _ in warned([day])]
    assert paths == ["$[0].medications[0].route"]
    # A drug whose label the table does not hold is not judged by route.
    other = entry("2026-11-05", headache=attack("2026-11-05T06:00:00+01:00", "2026-11-05T12:00:00+01:00"),
                  medications=[med("ibuprofen", "400 mg", "2026-11-05T07:00:00+01:00")])
    assert warned([other]) == []


@pytest.mark.parametrize(("gap_hours", "warns"), [(12, True), (13, False)])
def test_attacks_over_72_hours_with_remissions_of_up_to_12_hours_are_a_status_migrainosus_candidate(
        gap_hours: int, warns: bool) -> None:
    first = entry("2026-11-01", headache=attack("2026-11-01T00:00:00+00:00", "2026-11-02T12:00:00+00:00"))
    resumed = 12 + gap_hours  # hours after 2 Nov 00:00
    second_start = datetime(2026, 11, 2, tzinfo=UTC).timestamp() + resumed * 3600
    start = datetime.fromtimestamp(second_start, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    second = entry(start[:10], headache=attack(start, "2026-11-05T06:00:00+00:00"), n=1)
    found = [w for w in warned([first, second]) if w[0].endswith(".headache")]
    assert bool(found) == warns
    if warns:
        assert found[0][0] == "$[0].headache" and "ICHD-3 1.4.1" in found[0][1]


def test_a_single_attack_of_55_days_is_warned_of_and_one_of_70_hours_is_not() -> None:
    long = entry("2026-09-01", headache=attack("2026-09-01T08:00:00+02:00", "2026-10-26T08:00:00+01:00"))
    assert [p for p, _ in warned([long])] == ["$[0].headache"]
    short = entry("2026-09-01", headache=attack("2026-09-01T08:00:00+02:00", "2026-09-04T06:00:00+02:00"))
    assert warned([short]) == []


def test_times_in_the_future_or_years_before_the_entry_are_warned_of() -> None:
    future = entry("2026-12-01", headache=attack("2026-12-02T08:00:00+00:00"))
    old = entry("2026-11-01", headache=attack("2024-06-01T08:00:00+00:00"), n=1)
    found = dict(warned([future, old]))
    assert "in the future" in found["$[0].headache.start"]
    assert "more than a year before" in found["$[1].headache.start"]


def test_the_command_prints_the_bundle_and_the_warnings_on_stderr_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "diary.json"
    path.write_text(json.dumps([entry("2026-11-03", medications=[med("sumatriptan", "300 mg", "2026-11-03T09:00:00+01:00")])]))
    out, err = io.StringIO(), io.StringIO()
    assert main(["map", "diary", str(path)], out=out, err=err) == 0
    assert json.loads(out.getvalue())["resourceType"] == "Bundle"
    outcome = json.loads(err.getvalue())
    assert {i["expression"][0] for i in outcome["issue"]} == {"$[0].medications[0].taken_at", "$[0].medications[0].dose"}
    assert {i["severity"] for i in outcome["issue"]} == {"warning"}


def test_the_service_answers_the_warnings_with_the_bundle(client: Any) -> None:
    answer = client.post("/diary", json=entry("2026-11-03", medications=[med("sumatriptan", "300 mg", "2026-11-03T09:00:00+01:00")]))
    assert answer.status_code == 201 and answer.get_json()["resourceType"] == "Bundle"
    shown = json.loads(answer.headers["X-Warnings"])
    assert {w["path"] for w in shown} == {"$.medications[0].taken_at", "$.medications[0].dose"}


def test_the_service_adds_the_summary_when_asked_and_names_a_bad_flag(client: Any) -> None:
    overuse = json.loads((EXAMPLES / "diary" / "overuse.json").read_text(encoding="utf-8"))
    answer = client.post("/diary?summary=true", json=overuse)
    assert answer.status_code == 201
    kinds = [e["resource"]["resourceType"] for e in answer.get_json()["entry"]]
    assert kinds[-2:] == ["Observation", "DetectedIssue"]
    bad = client.post("/diary?summary=yes", json=overuse)
    assert bad.status_code == 422 and [e["path"] for e in bad.get_json()["errors"]] == ["$.summary"]


def test_the_labelled_maximum_is_over_any_24_hours_not_a_calendar_day() -> None:
    night = entry("2026-11-05", headache=attack("2026-11-05T22:00:00+01:00", "2026-11-06T06:00:00+01:00"),
                  medications=[med("sumatriptan", "100 mg", t) for t in
                               ("2026-11-05T22:30:00+01:00", "2026-11-05T23:30:00+01:00", "2026-11-06T00:30:00+01:00")])
    assert [p for p, _ in warned([night]) if p.endswith(".dose")] == ["$[0].medications[2].dose"]
    apart = entry("2026-11-05", headache=attack("2026-11-05T06:00:00+01:00", "2026-11-06T08:00:00+01:00"),
                  medications=[med("sumatriptan", "100 mg", t) for t in
                               ("2026-11-05T06:30:00+01:00", "2026-11-05T07:30:00+01:00", "2026-11-06T07:00:00+01:00")])
    assert [p for p, _ in warned([apart]) if p.endswith(".dose")] == []


def test_a_triptan_during_a_motor_aura_is_warned_of() -> None:
    aura = {**attack("2026-11-05T06:00:00+01:00", "2026-11-05T12:00:00+01:00"), "aura": ["motor", "sensory"]}
    day = entry("2026-11-05", headache=aura, medications=[med("sumatriptan", "50 mg", "2026-11-05T07:00:00+01:00")])
    [(path, message)] = warned([day])
    assert path == "$[0].medications[0].drug" and "hemiplegic" in message
    visual = {**aura, "aura": ["visual"]}
    assert warned([{**day, "headache": visual}]) == []


def test_dhe_by_injection_or_nasal_spray_is_labelled_and_atogepant_is_a_preventive() -> None:
    for route in ("intramuscular", "subcutaneous", "nasal"):
        day = entry("2026-11-05", headache=attack("2026-11-05T06:00:00+01:00", "2026-11-05T12:00:00+01:00"),
                    medications=[med("dihydroergotamine", "1 mg", "2026-11-05T07:00:00+01:00", route)])
        assert warned([day]) == [], route
    daily = [entry(f"2026-11-{d:02d}", medications=[med("atogepant", "60 mg", f"2026-11-{d:02d}T08:00:00+01:00")], n=d)
             for d in range(1, 11)]
    assert warned(daily) == []
    found = operations.diary_summary(operations.load_diary(Located(e, f"$[{i}]") for i, e in enumerate(daily)))
    assert found["acute_medication_days"] == 0 and found["medication_days_by_class"] == {"gepant": 10}


def test_a_start_more_than_a_day_after_its_entry_is_warned_of() -> None:
    typo = entry("2026-10-20", headache=attack("2026-11-20T08:00:00+01:00", "2026-11-20T12:00:00+01:00"))
    assert [p for p, _ in warned([typo])] == ["$[0].headache.start"]


def test_a_second_dose_of_lasmiditan_within_24_hours_is_warned_of() -> None:
    day = entry("2026-11-05", headache=attack("2026-11-05T06:00:00+01:00", "2026-11-05T20:00:00+01:00"),
                medications=[med("lasmiditan", "100 mg", "2026-11-05T07:00:00+01:00"),
                             med("lasmiditan", "100 mg", "2026-11-05T11:00:00+01:00")])
    found = [(p, m) for p, m in warned([day]) if p.endswith(".dose")]
    assert [p for p, _ in found] == ["$[0].medications[1].dose"] and "1 dose(s)" in found[0][1]
    one = {**day, "medications": day["medications"][:1]}
    assert [p for p, _ in warned([one]) if p.endswith(".dose")] == []


def test_a_drug_the_class_table_does_not_know_is_counted_apart() -> None:
    fioricet = entry("2026-11-05", headache=attack("2026-11-05T06:00:00+01:00", "2026-11-05T12:00:00+01:00"),
                     medications=[{**med("Fioricet", "50 mg", "2026-11-05T07:00:00+01:00"),
                                   "code": {"system": "http://example.org/local-drugs", "code": "local-1",
                                            "display": "Fioricet"}}])
    loaded = operations.load_diary([Located(fioricet, "$")])
    found = operations.diary_summary(loaded)
    assert (found["unclassified_medication_days"], found["acute_medication_days"]) == (1, 0)
