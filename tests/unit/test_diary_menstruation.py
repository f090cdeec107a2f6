"""Menstruation as a daily diary field: the diary-menstruation Observation and back, the CSV column,
bad values refused where they are, and the summary's menstrual association (ICHD-3 A1.1.2)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine import operations
from fhir_migraine.inputs.diary_files import Located, read_text
from fhir_migraine.mapping.summary import menstruation_starts
from tests.helpers import run_cli

PATIENT = {"reference": "Patient/123"}
DIARY_CS = "https://fhir-migraine.org/fhir/CodeSystem/migraine-diary"


def day(when: date, **fields: Any) -> dict[str, Any]:
    return {"entry_id": f"p-{when.isoformat()}", "patient": PATIENT, "date": when.isoformat(), **fields}


def attack_on(when: date) -> dict[str, Any]:
    return {"start": f"{when.isoformat()}T08:00:00+01:00", "end": f"{when.isoformat()}T14:00:00+01:00"}


def diary(day_1s: list[date], attacks: list[date], run: int = 4) -> list[dict[str, Any]]:
    """Each day from the first to the last one named, menstruating ``run`` days from each day 1,
    with the attacks given; every other day recorded as neither."""
    menstruating = {d + timedelta(days=n) for d in day_1s for n in range(run)}
    first, last = min([*day_1s, *attacks]) - timedelta(days=3), max([*day_1s, *attacks]) + timedelta(days=run)
    entries = []
    current = first
    while current <= last:
        fields: dict[str, Any] = {"menstruation": current in menstruating}
        fields["headache"] = attack_on(current) if current in attacks else None
        entries.append(day(current, **fields))
        current += timedelta(days=1)
    return entries


def loaded(entries: list[dict[str, Any]]) -> list[Any]:
    return operations.load_diary(Located(e, f"$[{i}]") for i, e in enumerate(entries))


def mapped(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    bundle = operations.map_diary([Located(e, f"$[{i}]") for i, e in enumerate(entries)])
    return [e["resource"] for e in bundle["entry"]]


@pytest.mark.parametrize(("value", "text"), [(True, "Menstruating, 20 Nov 2026"), (False, "Not menstruating, 20 Nov 2026")])
def test_a_recorded_day_maps_to_a_menstruation_observation_member_of_the_day(value: bool, text: str) -> None:
    resources = mapped([day(date(2026, 11, 20), headache=None, menstruation=value)])
    day_obs, menstruation = resources
    assert menstruation["meta"]["profile"] == ["https://fhir-migraine.org/fhir/StructureDefinition/diary-menstruation"]
    assert menstruation["identifier"] == [{"system": "https://fhir-migraine.org/fhir/sid/diary",
                                           "value": "p-2026-11-20/menstruation"}]
    assert menstruation["code"]["coding"] == [{"system": DIARY_CS, "code": "menstruating", "display": "Menstruating"}]
    assert (menstruation["effectiveDateTime"], menstruation["valueBoolean"]) == ("2026-11-20", value)
    assert menstruation["performer"] == [PATIENT]
    assert f"<p>{text}</p>" in menstruation["text"]["div"]
    assert len(day_obs["hasMember"]) == 1 and day_obs["valueBoolean"] is False


def test_a_day_that_does_not_record_menstruation_has_no_menstruation_observation() -> None:
    resources = mapped([day(date(2026, 11, 20), headache=None)])
    assert [r["meta"]["profile"][0].rsplit("/", 1)[-1] for r in resources] == ["diary-day"]


@pytest.mark.parametrize("value", [True, False])
def test_menstruation_maps_back_unchanged(value: bool) -> None:
    entry = day(date(2026, 11, 20), menstruation=value)
    bundle = operations.map_diary([Located(entry, "$")])
    assert operations.unmap(bundle)["diary"] == [entry]


@pytest.mark.parametrize(("cell", "value"), [("yes", True), ("no", False), ("", None)])
def test_the_csv_column_reads_yes_no_or_not_recorded(cell: str, value: bool | None) -> None:
    text = f"entry_id,patient,date,menstruation\ne-1,Patient/123,2026-11-20,{cell}\n"
    (entry,) = [located.document for located in read_text(text, "csv")]
    assert entry.get("menstruation") == value and ("menstruation" in entry) == (value is not None)


def test_a_csv_maybe_is_refused_at_its_row_and_column(tmp_path: Path) -> None:
    file = tmp_path / "diary.csv"
    file.write_text("entry_id,patient,date,menstruation\ne-1,Patient/123,2026-11-20,yes\ne-2,Patient/123,2026-11-21,maybe\n")
    run = run_cli("map", "diary", str(file))
    assert run.code == 1, run.err
    assert "row 3, column menstruation ($.menstruation):" in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize("value", [1, 0, "yes", "true", None, [True], {"flow": "heavy"}], ids=repr)
def test_a_non_boolean_in_json_is_refused_naming_the_field(value: Any, tmp_path: Path, client) -> None:
    entry = day(date(2026, 11, 20), menstruation=value)
    file = tmp_path / "diary.json"
    file.write_text(json.dumps([entry]))
    run = run_cli("map", "diary", str(file))
    assert (run.code, run.out) == (1, ""), run.err
    assert "$[0].menstruation:" in run.err and "Traceback" not in run.err
    answer = client.post("/diary", json=[entry])
    assert answer.status_code == 422
    assert "$[0].menstruation" in [e["path"] for e in answer.get_json()["errors"]]


def test_day_1_is_a_menstruating_day_whose_day_before_is_not() -> None:
    d = date(2026, 10, 1)
    entries = [day(d + timedelta(days=n), menstruation=flag)
               for n, flag in enumerate([False, True, True, True, False, True])]
    entries.append(day(d + timedelta(days=30), menstruation=True))  # after days with nothing recorded
    entries.append(day(d + timedelta(days=31)))  # not recorded
    assert menstruation_starts(loaded(entries)) == [d + timedelta(days=1), d + timedelta(days=5), d + timedelta(days=30)]


def association(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return operations.diary_summary(loaded(entries))["menstrual_association"]


CYCLES = [date(2026, 1, 10), date(2026, 2, 7), date(2026, 3, 7)]


def test_attacks_around_day_1_in_two_of_three_cycles_fit_a1_1_2() -> None:
    # Day -2 of the first cycle (8 Jan), day +3 of the second (9 Feb); none around the third; one
    # attack at another time (20 Jan).
    found = association(diary(CYCLES, [date(2026, 1, 8), date(2026, 2, 9), date(2026, 1, 20)]))
    assert (found["cycles"], found["fits_a1_1_2"], found["association"]) == (3, True, "menstrually-related")
    assert (found["perimenstrual_cycles"], found["attacks_at_other_times"], found["pure_menstrual"]) == (2, 1, False)
    assert [c["day_1"] for c in found["cycle_windows"]] == [d.isoformat() for d in CYCLES]


def test_attacks_around_day_1_in_one_of_three_cycles_do_not_fit() -> None:
    # 10 Feb is day +4 of the second cycle: outside day -2 to +3 (there is no day 0).
    found = association(diary(CYCLES, [date(2026, 1, 11), date(2026, 2, 10), date(2026, 3, 20)]))
    assert (found["cycles"], found["fits_a1_1_2"], found["perimenstrual_cycles"]) == (3, False, 1)


def test_fewer_than_three_cycles_are_not_assessed() -> None:
    found = association(diary(CYCLES[:2], [date(2026, 1, 10), date(2026, 2, 7)]))
    assert (found["cycles"], found["fits_a1_1_2"], found["pure_menstrual"]) == (2, None, None)
    assert found["association"] == "not-enough-data"


def test_a_diary_without_menstruation_records_no_cycle() -> None:
    found = operations.diary_summary(loaded([day(date(2026, 11, 20), headache=attack_on(date(2026, 11, 20)))]))
    assert (found["menstrual_association"]["cycles"], found["menstrual_association"]["fits_a1_1_2"]) == (0, None)


def test_only_the_cycles_starting_in_the_period_are_read() -> None:
    entries = diary(CYCLES, [date(2026, 1, 8), date(2026, 2, 9), date(2026, 3, 8)])
    found = operations.summary.summarize(loaded(entries), date(2026, 2, 1), date(2026, 3, 31))
    assert (found["menstrual_association"]["cycles"], found["menstrual_association"]["fits_a1_1_2"]) == (2, None)


def summary_components(entries: list[dict[str, Any]]) -> dict[str, Any]:
    bundle, _ = operations.map_diary_with_warnings([Located(e, f"$[{i}]") for i, e in enumerate(entries)],
                                                   with_summary=True)  # validated against the profiles
    summary = next(e["resource"] for e in bundle["entry"] if e["resource"]["meta"]["profile"][0].endswith("/diary-summary"))
    return {c["code"]["coding"][0]["code"]: c.get("valueBoolean", c.get("valueInteger")) for c in summary["component"]}


def test_the_summary_observation_says_whether_the_pattern_fits_once_assessed() -> None:
    fits = summary_components(diary(CYCLES, [date(2026, 1, 8), date(2026, 2, 9)]))
    does_not = summary_components(diary(CYCLES, [date(2026, 1, 20)]))
    too_few = summary_components(diary(CYCLES[:2], [date(2026, 1, 8), date(2026, 2, 9)]))
    assert (fits["menstrually-related"], does_not["menstrually-related"]) == (True, False)
    assert "menstrually-related" not in too_few
