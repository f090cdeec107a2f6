"""Resource.text: what each resource's narrative says, that it comes from the resource's own data
alone, where it sits, and that every resource the mappings write has one that passes the checks."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine.mapping.narrative import XHTML, narrative, period_text, when, with_text
from fhir_migraine.validation import default_validator

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = sorted((ROOT / "examples" / "bundles").glob("*.bundle.json")) + [ROOT / "examples" / "diary" / "month.bundle.json"]


def _resources() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in GOLDEN:
        for i, entry in enumerate(json.loads(path.read_text(encoding="utf-8"))["entry"]):
            resource = entry["resource"]
            found.append((f"{path.name}#{i}", resource))
            found += [(f"{path.name}#{i}/{c['id']}", c) for c in resource.get("contained", [])]
    return found


RESOURCES = _resources()


def _said(resource: dict[str, Any]) -> str:
    return str(resource["text"]["div"])


def _find(profile_end: str, predicate: Any = lambda r: True) -> dict[str, Any]:
    return next(r for _, r in RESOURCES if r.get("meta", {}).get("profile", [""])[0].endswith(profile_end) and predicate(r))


@pytest.mark.parametrize(("name", "resource"), RESOURCES, ids=[name for name, _ in RESOURCES])
def test_every_written_resource_has_a_generated_narrative_made_from_its_own_data(name: str, resource: dict[str, Any]) -> None:
    text = resource["text"]
    assert text["status"] == "generated"
    assert text["div"].startswith(f'<div xmlns="{XHTML}">') and text["div"].endswith("</div>")
    # The same narrative again from the resource alone (no input): nothing else went into it.
    assert narrative({k: v for k, v in resource.items() if k != "text"}) == text


@pytest.mark.parametrize(("name", "resource"), RESOURCES, ids=[name for name, _ in RESOURCES])
def test_text_comes_right_after_id_and_meta(name: str, resource: dict[str, Any]) -> None:
    keys = list(resource)
    assert keys.index("text") == len([k for k in ("resourceType", "id", "meta") if k in resource])


def test_the_golden_bundles_with_their_narratives_are_valid() -> None:
    validator = default_validator()
    for path in GOLDEN:
        issues = validator.issues(json.loads(path.read_text(encoding="utf-8")))
        assert [i for i in issues if i.severity in ("error", "fatal")] == [], path.name


def test_an_attack_says_its_times_length_peak_and_the_displays_of_its_codings() -> None:
    attack = _find("diary-attack", lambda r: r["effectivePeriod"]["start"] == "2026-10-20T06:30:00-04:00")
    assert _said(attack) == (
        f'<div xmlns="{XHTML}"><p>Headache attack 20 Oct 2026 06:30 – 14:00 −04:00 (7 h 30 min): peak 7/10; '
        "Unilateral headache; Throbbing headache; Aggravated by routine physical activity: yes; "
        "symptoms: Nausea, Photophobia, Phonophobia; aura: Visual aura; suspected triggers: Sleep deprivation, "
        "Dehydration; disability: Moderate disability</p></div>")


def test_an_attack_over_a_change_of_offset_shows_both_offsets_and_the_real_length() -> None:
    attack = _find("diary-attack", lambda r: r["effectivePeriod"]["start"] == "2026-10-31T22:00:00-04:00")
    assert "31 Oct 2026 22:00 −04:00 – 1 Nov 2026 08:30 −05:00 (11 h 30 min)" in _said(attack)


def test_an_attack_still_going_on_says_so() -> None:
    attack = _find("diary-attack", lambda r: "end" not in r["effectivePeriod"])
    assert "Headache attack from 16 Nov 2026 19:45 −05:00, no end recorded" in _said(attack)
    assert "ongoing when recorded" in _said(attack)


@pytest.mark.parametrize(("value", "said"), [
    ({"valueBoolean": True}, "headache day"),
    ({"valueBoolean": False}, "headache-free"),
    ({"dataAbsentReason": {"coding": [{"code": "not-asked"}]}}, "not recorded"),
], ids=["headache", "headache-free", "not-recorded"])
def test_a_diary_day_says_what_was_recorded(value: dict[str, Any], said: str) -> None:
    day = {"resourceType": "Observation", "meta": {"profile": ["https://fhir-migraine.org/fhir/StructureDefinition/diary-day"]},
           "effectiveDateTime": "2026-10-25", **value}
    assert narrative(day)["div"] == f'<div xmlns="{XHTML}"><p>Headache diary, 25 Oct 2026: {said}</p></div>'


def test_a_medication_statement_says_drug_dose_route_time_and_the_attack() -> None:
    taken = _find("diary-medication-statement", lambda r: r["effectiveDateTime"] == "2026-10-20T07:00:00-04:00")
    assert ("Medication taken (completed, patient-reported): sumatriptan 50 mg, Oral route, 20 Oct 2026 07:00 −04:00, "
            "for the headache attack") in _said(taken)
    free_day = copy.deepcopy(taken)
    del free_day["reasonReference"]
    assert "for the headache attack" not in narrative(free_day)["div"]


def test_a_medication_outcome_says_each_outcome_recorded_two_hours_after() -> None:
    outcome = _find("diary-medication-outcome", lambda r: r["effectiveDateTime"] == "2026-10-20T09:00:00-04:00")
    assert ("Outcome at 2 h of a medication taken, 20 Oct 2026 09:00 −04:00: relief: yes; pain: No pain; pain-free: yes; "
            "free of the most bothersome symptom: yes; recurrence within 48 h: no") in _said(outcome)
    rescued = _find("diary-medication-outcome", lambda r: r["effectiveDateTime"] == "2026-10-24T23:30:00-04:00")
    assert "relief: no; pain: Moderate pain; pain-free: no; rescue medication taken: yes" in _said(rescued)


def test_a_request_says_its_dosage_text_timing_status_and_intent() -> None:
    request = next(r for _, r in RESOURCES if r["resourceType"] == "MedicationRequest"
                   and r["dosageInstruction"][0]["text"].startswith("dihydroergotamine"))
    said = _said(request)
    assert "Medication request (draft, order)" in said
    for dosage in request["dosageInstruction"]:
        assert dosage["text"] in said
    assert "from 4 Dec 2026 14:30 UTC, every 8 h, 8 times" in said
    assert "Body weight: 81.5 kg" in said


def test_a_group_lists_its_steps_in_order_and_a_detected_issue_its_detail() -> None:
    group = next(r for _, r in RESOURCES if r["resourceType"] == "RequestGroup" and "ed-migraine" in r["instantiatesCanonical"][0])
    steps = [f"<li>{a['title']}: {a['textEquivalent']}</li>" for a in group["action"]]
    assert "".join(steps) in _said(group)
    assert "protocol ed-migraine-rescue version 1.0" in _said(group)
    issue = next(r for _, r in RESOURCES if r["resourceType"] == "DetectedIssue")
    assert issue["detail"] in _said(issue)


def test_a_charted_weight_names_its_order() -> None:
    weight = {"resourceType": "Observation",
              "meta": {"profile": ["https://fhir-migraine.org/fhir/StructureDefinition/migraine-order-weight"]},
              "identifier": [{"system": "https://fhir-migraine.org/fhir/sid/order-weight", "value": "o-1"}],
              "code": {"coding": [{"code": "29463-7", "display": "Body weight"}]},
              "effectiveDateTime": "2026-12-04T05:10:00Z", "valueQuantity": {"value": 72, "unit": "kg"}}
    assert "Body weight 72 kg, 4 Dec 2026 05:10 UTC; charted for order o-1" in narrative(weight)["div"]


def test_values_are_escaped() -> None:
    day = {"resourceType": "Observation", "meta": {"profile": ["https://fhir-migraine.org/fhir/StructureDefinition/diary-day"]},
           "effectiveDateTime": "2026-10-25", "valueBoolean": True, "note": [{"text": "<script>alert('x')</script> & co"}]}
    div = narrative(day)["div"]
    assert "<script>" not in div and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in div
    assert default_validator().issues(with_text(day)) == [i for i in default_validator().issues(day)]


def test_with_text_replaces_a_narrative_and_keeps_the_other_elements_in_order() -> None:
    resource = {"resourceType": "Observation", "id": "x", "meta": {}, "status": "final", "text": {"status": "empty", "div": "x"}}
    assert list(with_text(resource)) == ["resourceType", "id", "meta", "text", "status"]


@pytest.mark.parametrize(("start", "end", "said"), [
    ("2026-10-25T21:40:00-04:00", "2026-10-26T09:10:00-04:00", "25 Oct 2026 21:40 – 26 Oct 2026 09:10 −04:00 (11 h 30 min)"),
    ("2026-10-25T21:40:00Z", "2026-10-25T22:00:00Z", "25 Oct 2026 21:40 – 22:00 UTC (20 min)"),
    ("2026-10-25", "2026-10-26", "25 Oct 2026 – 26 Oct 2026"),
], ids=["across-midnight", "utc", "dates"])
def test_periods_read_as_a_clinician_writes_them(start: str, end: str, said: str) -> None:
    assert period_text(start, end) == said


def test_a_value_that_is_not_a_date_is_shown_as_it_is() -> None:
    assert when("2026-10") == "2026-10"
    assert when("2026-10-25T21:40:05+05:30") == "25 Oct 2026 21:40:05 +05:30"


def test_a_narrative_changes_with_the_data_it_says() -> None:
    attack = copy.deepcopy(_find("diary-attack"))
    attack["component"][0]["valueInteger"] = 3
    assert "peak 3/10" in narrative(attack)["div"]
