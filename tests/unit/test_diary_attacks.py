"""Attacks independent of days: one Observation per attack, the patient's attack id on every record
of an attack, days an attack runs into said as headache days (the entry's own answer kept, and a
warning), and a continued attack read as one attack by the summary and the warnings."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine import operations
from fhir_migraine.cli import main
from fhir_migraine.ehr.importer import map_chunk
from fhir_migraine.errors import InputError
from fhir_migraine.identifiers import ATTACK_SYSTEM, DIARY_SYSTEM
from fhir_migraine.inputs.diary_files import Located
from fhir_migraine.mapping.attacks import Ledger
from fhir_migraine.mapping.unmap_diary import entries_from_bundle
from tests.diary_cases import to_csv

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PATIENT = {"reference": "Patient/77"}


def entry(day: str, n: str = "", **fields: Any) -> dict[str, Any]:
    return {"entry_id": f"at-2026-11-{day}{n}", "patient": PATIENT, "date": f"2026-11-{day}", **fields}


def at(day: str, clock: str) -> str:
    return f"2026-11-{day}T{clock}:00+01:00"


def mapped(entries: list[dict[str, Any]]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    bundle, outcome = operations.map_diary_with_warnings([Located(e, f"$[{i}]") for i, e in enumerate(entries)], now=NOW)
    return bundle, [(i["expression"][0], i["diagnostics"]) for i in (outcome or {}).get("issue", [])]


def resource(bundle: dict[str, Any], value: str) -> dict[str, Any]:
    for item in bundle["entry"]:
        if {"system": DIARY_SYSTEM, "value": value} in item["resource"].get("identifier", []):
            return item["resource"]
    raise AssertionError(f"no resource {value}")


def codes(observation: dict[str, Any]) -> list[str]:
    return [c["code"]["coding"][0]["code"] for c in observation.get("component", [])]


TWO = entry("20", attacks=[{"start": at("20", "06:00"), "end": at("20", "08:00")},
                           {"id": "a1", "start": at("20", "21:30"), "peak_intensity": 7}])
GOES_ON = entry("21", attacks=[{"continues": "a1", "start": at("21", "00:00"), "end": at("21", "09:10")}])


def test_each_attack_of_an_entry_is_an_observation_numbered_by_its_place() -> None:
    bundle, _ = mapped([TWO])
    first, second = resource(bundle, "at-2026-11-20/attack/0"), resource(bundle, "at-2026-11-20/attack/1")
    assert first["effectivePeriod"] == {"start": at("20", "06:00"), "end": at("20", "08:00")} and first["status"] == "final"
    assert second["status"] == "preliminary" and "end" not in second["effectivePeriod"]
    day = resource(bundle, "at-2026-11-20")
    assert day["valueBoolean"] is True and len(day["hasMember"]) == 2
    assert len(first["identifier"]) == 1, "no attack id, no attack identifier"


def test_a_continuation_carries_the_attack_identifier_of_the_attack_it_continues() -> None:
    bundle, _ = mapped([TWO, GOES_ON])
    original, continued = resource(bundle, "at-2026-11-20/attack/1"), resource(bundle, "at-2026-11-21/attack/0")
    expected = {"system": ATTACK_SYSTEM, "value": "77/a1"}
    assert original["identifier"][1] == expected and continued["identifier"][1] == expected
    assert "continued-attack" in codes(continued) and "continued-attack" not in codes(original)
    assert operations.unmap(bundle)["diary"] == [TWO, GOES_ON]


def test_the_headache_shorthand_keeps_its_identifier_and_may_carry_an_id() -> None:
    bundle, _ = mapped([entry("20", headache={"id": "x", "start": at("20", "06:00")})])
    attack = resource(bundle, "at-2026-11-20/attack")
    assert attack["identifier"] == [{"system": DIARY_SYSTEM, "value": "at-2026-11-20/attack"}, {"system": ATTACK_SYSTEM, "value": "77/x"}]


@pytest.mark.parametrize(("said", "kept"), [({"headache": None}, {"valueBoolean": False}), ({}, "dataAbsentReason")],
                         ids=["headache-free", "not-recorded"])
def test_a_day_an_attack_runs_into_is_a_headache_day_and_keeps_the_entrys_answer(said: dict[str, Any], kept: Any) -> None:
    night = entry("20", headache={"start": at("20", "22:00"), "end": at("21", "03:00")})
    after = entry("21", **said)
    bundle, warnings = mapped([night, after])
    day = resource(bundle, "at-2026-11-21")
    assert day["valueBoolean"] is True and "dataAbsentReason" not in day
    [component] = day["component"]
    assert component["code"]["coding"][0]["code"] == "headache-as-recorded"
    assert component.get("valueBoolean") is False if kept != "dataAbsentReason" else "dataAbsentReason" in component
    [(path, message)] = warnings
    assert path == "$[1].headache" and "'at-2026-11-21'" in message and "'at-2026-11-20'" in message and at("20", "22:00") in message
    assert operations.unmap(bundle)["diary"] == [night, after]


def test_an_attack_of_a_later_entry_corrects_an_earlier_day_too() -> None:
    after = entry("21", headache=None)
    night = entry("20", headache={"start": at("20", "22:00"), "end": at("21", "03:00")})
    bundle, warnings = mapped([after, night])
    assert resource(bundle, "at-2026-11-21")["valueBoolean"] is True and [p for p, _ in warnings] == ["$[0].headache"]


@pytest.mark.parametrize(
    ("night", "after"),
    [
        (entry("20", headache={"start": at("20", "22:00"), "end": at("21", "00:00")}), entry("21", headache=None)),
        (entry("20", headache={"start": at("20", "22:00"), "end": at("21", "03:00")}),
         entry("21", headache=None) | {"patient": {"reference": "Patient/78"}}),
        (entry("20", headache={"start": at("20", "22:00")}), entry("21", headache=None)),
    ],
    ids=["ends-at-midnight", "another-patient", "no-end"],
)
def test_a_day_no_attack_of_the_patient_reaches_stays_as_the_entry_says(night: dict[str, Any], after: dict[str, Any]) -> None:
    bundle, warnings = mapped([night, after])
    day = resource(bundle, "at-2026-11-21")
    assert day["valueBoolean"] is False and "component" not in day and warnings == []


def test_a_continued_attack_is_one_attack_in_the_summary() -> None:
    first = entry("20", attacks=[{"id": "a1", "start": at("20", "21:30"), "location": "unilateral", "quality": "pulsating"}])
    then = entry("21", attacks=[{"continues": "a1", "start": at("21", "00:00"), "end": at("21", "09:10"), "peak_intensity": 8,
                                 "symptoms": ["nausea"]}])
    found = operations.diary_summary(operations.load_diary([Located(first, "$[0]"), Located(then, "$[1]")]))
    assert (found["attacks"], found["headache_days"], found["longest_attack_hours"]) == (1, 2, 11.67)
    [reading] = found["attack_readings"]
    assert (reading["entry_id"], reading["start"], reading["end"]) == ("at-2026-11-20", at("20", "21:30"), at("21", "09:10"))
    # Unilateral and pulsating from the first record, severe with nausea from the second: migraine features.
    assert found["migraine_days"] == 2
    separate = [first | {"attacks": [{"start": at("20", "21:30"), "location": "unilateral", "quality": "pulsating"}]},
                then | {"attacks": [{"start": at("21", "00:00"), "end": at("21", "09:10"), "peak_intensity": 8,
                                     "symptoms": ["nausea"]}]}]
    apart = operations.diary_summary(operations.load_diary(Located(e, f"$[{i}]") for i, e in enumerate(separate)))
    assert (apart["attacks"], apart["migraine_days"]) == (2, 0)


def test_a_continued_attack_over_72_hours_is_warned_of_at_its_first_record() -> None:
    # Records 20 Nov 08:00 (no end), 21 Nov 00:00-23:00, 23 Nov 06:00-12:00: one attack of 100 hours,
    # though the last record comes more than 12 hours after the one before.
    records = [entry("20", attacks=[{"id": "long", "start": at("20", "08:00")}]),
               entry("21", attacks=[{"continues": "long", "start": at("21", "00:00"), "end": at("21", "23:00")}]),
               entry("23", attacks=[{"continues": "long", "start": at("23", "06:00"), "end": at("23", "12:00")}])]
    _, warnings = mapped(records)
    assert [(p, "72 hours" in m) for p, m in warnings if "72" in m] == [("$[0].attacks[0]", True)]
    alone = [{k: v for k, v in e.items() if k != "attacks"} | {"attacks": [
        {key: value for key, value in e["attacks"][0].items() if key not in ("id", "continues")}]} for e in records]
    _, warnings = mapped(alone)
    assert not [m for _, m in warnings if "72 hours" in m]


def test_an_import_in_chunks_finds_a_continued_attack_in_an_earlier_chunk() -> None:
    ledger = Ledger()
    bundle, queued, problems = map_chunk([Located(TWO, "$", line=1)], ledger)
    assert (queued, problems) == (1, []) and bundle is not None
    bundle, queued, problems = map_chunk([Located(GOES_ON, "$", line=2)], ledger)
    assert (queued, problems) == (1, [])
    _, queued, problems = map_chunk([Located(GOES_ON, "$", line=2)], Ledger())
    assert queued == 0 and [(p.path, p.location) for p in problems] == [("$.attacks[0].continues", "line 2")]


def test_a_chunk_refused_in_part_leaves_the_ledger_with_the_entries_it_queued() -> None:
    ledger = Ledger()
    broken = entry("22", headache={"start": "yesterday"})
    _, queued, problems = map_chunk([Located(TWO, "$", line=1), Located(broken, "$", line=2)], ledger)
    assert queued == 1 and [p.location for p in problems] == ["line 2"]
    _, queued, _ = map_chunk([Located(GOES_ON, "$", line=3)], ledger)
    assert queued == 1


def test_an_attack_id_may_be_given_again_by_another_patient() -> None:
    other = TWO | {"entry_id": "other-20", "patient": {"reference": "Patient/78"}}
    bundle, _ = mapped([TWO, other, GOES_ON])
    assert resource(bundle, "other-20/attack/1")["identifier"][1]["value"] == "78/a1"
    with pytest.raises(InputError, match="already given by entry 'at-2026-11-20'"):
        operations.load_diary([Located(TWO, "$[0]"), Located(TWO | {"entry_id": "again"}, "$[1]")])


NIGHT = entry("20", headache={"start": at("20", "22:00"), "end": at("21", "03:00")})
AFTER = entry("21", headache=None)


def test_the_command_prints_the_corrected_day_and_its_warning_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "diary.csv"
    path.write_text(to_csv([NIGHT, AFTER]))
    out, err = io.StringIO(), io.StringIO()
    assert main(["map", "diary", str(path)], out=out, err=err) == 0
    assert resource(json.loads(out.getvalue()), "at-2026-11-21")["valueBoolean"] is True
    [issue] = json.loads(err.getvalue())["issue"]
    assert issue["severity"] == "warning" and issue["expression"] == ["$.headache"]
    assert "row 3, column headache" in issue["diagnostics"] and "'at-2026-11-20'" in issue["diagnostics"]


def test_the_service_answers_the_corrected_day_with_its_warning(client: Any) -> None:
    answer = client.post("/diary", json=[NIGHT, AFTER])
    assert answer.status_code == 201
    [shown] = json.loads(answer.headers["X-Warnings"])
    assert shown["path"] == "$[1].headache" and "overlaps 2026-11-21" in shown["message"]


def test_a_diary_in_any_order_finds_the_attack_a_record_continues() -> None:
    # A pulled diary comes in the EHR's order: the attack ids are read in the order the attacks began.
    bundle, _ = mapped([GOES_ON, TWO])
    assert operations.unmap(bundle)["diary"] == [GOES_ON, TWO]
    searchset = {"resourceType": "Bundle", "type": "searchset",
                 "entry": [{"resource": e["resource"]} for e in reversed(bundle["entry"])]}
    pulled = operations.unmap(searchset)["diary"]
    figures = operations.diary_summary(operations.load_diary(Located(e, f"$[{i}]") for i, e in enumerate(pulled)))
    assert figures["attacks"] == 2 and figures["headache_days"] == 2


def test_a_corrected_day_whose_kept_answer_says_headache_is_reported_not_guessed() -> None:
    bundle, _ = mapped([NIGHT, AFTER])
    day = resource(bundle, "at-2026-11-21")
    day["component"][0]["valueBoolean"] = True
    problems: list[dict[str, Any]] = []
    assert [e["entry_id"] for e in entries_from_bundle(bundle, problems)] == ["at-2026-11-20"]
    assert problems and problems[0]["entry_id"] == "at-2026-11-21" and "corrected day" in problems[0]["problem"]


@pytest.mark.parametrize(("clock", "expected"), [("07:00", "attack/0"), ("12:00", "attack/0"), ("22:00", "attack/1"),
                                                  ("05:00", None)],
                         ids=["during-the-first", "after-the-first-ended", "during-the-second", "before-any"])
def test_a_medication_names_the_attack_it_was_taken_for(clock: str, expected: str | None) -> None:
    taken = TWO | {"medications": [{"drug": "ibuprofen", "dose": "400 mg", "taken_at": at("20", clock)}]}
    bundle, _ = mapped([taken])
    statement = resource(bundle, "at-2026-11-20/medication/0")
    reasons = [r["reference"] for r in statement.get("reasonReference", [])]
    wanted = [] if expected is None else [next(e["fullUrl"] for e in bundle["entry"]
                                              if e["resource"]["identifier"][0]["value"] == f"at-2026-11-20/{expected}")]
    assert reasons == wanted
