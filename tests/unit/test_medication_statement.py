"""A medication taken: its MedicationStatement, its outcome Observation at 2 hours (only when an
outcome was recorded), the contradictions refused, and the reading back of both shapes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_migraine import operations
from fhir_migraine.errors import InputError
from fhir_migraine.identifiers import DIARY_SYSTEM
from fhir_migraine.inputs import diary
from fhir_migraine.inputs.diary_files import Located, read_text
from fhir_migraine.mapping.diary import to_fhir_bundle, two_hours_after
from fhir_migraine.mapping.fhir import full_url, identifiers
from fhir_migraine.validation import default_validator
from tests.diary_cases import ENTRY

DIARY_CS = "https://fhir-migraine.org/fhir/CodeSystem/migraine-diary"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
TAKEN = {"drug": "sumatriptan", "dose": "50 mg", "route": "oral", "taken_at": "2026-11-20T07:00:00+01:00"}


def entry(headache: Any = ENTRY["headache"], **medication: Any) -> dict[str, Any]:
    return {"entry_id": "e-1", "patient": {"reference": "Patient/123"}, "date": "2026-11-20", "headache": headache,
            "medications": [TAKEN | medication]}


def resources(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The mapped resources by identifier value."""
    bundle = to_fhir_bundle([diary.load(document)])
    return {identifiers(e["resource"])[0]["value"]: e["resource"] for e in bundle["entry"]}


def test_a_medication_is_a_completed_statement_from_the_patient_for_the_attack() -> None:
    found = resources(entry())
    statement = found["e-1/medication/0"]
    assert statement["resourceType"] == "MedicationStatement" and statement["status"] == "completed"
    assert statement["informationSource"] == statement["subject"] == {"reference": "Patient/123"}
    assert statement["effectiveDateTime"] == TAKEN["taken_at"]
    assert statement["medicationCodeableConcept"]["text"] == "sumatriptan"
    assert statement["reasonReference"] == [{"reference": full_url(found["e-1/attack"]["identifier"][0])}]
    assert statement["dosage"] == [{
        "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral route"}]},
        "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}],
    }]
    assert "e-1/medication/0/outcome" not in found, "no outcome recorded, no outcome Observation"
    day_members = {m["reference"] for m in found["e-1"]["hasMember"]}
    assert full_url(statement["identifier"][0]) not in day_members, "R4 hasMember cannot name a MedicationStatement"


@pytest.mark.parametrize("headache", [None, "absent"], ids=["headache-free", "not-recorded"])
def test_a_medication_on_a_day_without_an_attack_has_no_reason(headache: Any) -> None:
    document = entry(headache)
    if headache == "absent":
        del document["headache"]
    assert "reasonReference" not in resources(document)["e-1/medication/0"]


def test_the_outcome_is_part_of_the_statement_two_hours_later_with_only_what_was_recorded() -> None:
    found = resources(entry(relief_2h=True, pain_2h="mild", rescue=False))
    outcome = found["e-1/medication/0/outcome"]
    assert outcome["partOf"] == [{"reference": full_url(found["e-1/medication/0"]["identifier"][0])}]
    assert outcome["effectiveDateTime"] == "2026-11-20T09:00:00+01:00"
    assert [c["code"]["coding"][0]["code"] for c in outcome["component"]] == ["relief-2h", "pain-2h", "rescue-medication"]
    assert outcome["component"][1]["valueCodeableConcept"]["coding"][0]["code"] == "LA15111-0"  # LOINC "Mild pain"
    assert full_url(outcome["identifier"][0]) in {m["reference"] for m in found["e-1"]["hasMember"]}
    bundle = to_fhir_bundle([diary.load(entry(relief_2h=True, pain_2h="mild", rescue=False))])
    assert [i for i in default_validator().issues(bundle) if i.severity in ("error", "fatal")] == []


@pytest.mark.parametrize(("taken_at", "later"), [
    ("2026-11-20T07:00:00Z", "2026-11-20T09:00:00Z"),
    ("2026-11-20T23:30:00-05:00", "2026-11-21T01:30:00-05:00"),
    ("2026-03-29T01:30:00.250+01:00", "2026-03-29T03:30:00.250000+01:00"),
], ids=["utc", "past-midnight", "fraction"])
def test_two_hours_after_keeps_the_offset_as_written(taken_at: str, later: str) -> None:
    assert two_hours_after(taken_at) == later


@pytest.mark.parametrize(("pain", "free"), [("none", False), ("mild", True), ("severe", True)])
def test_pain_freedom_that_contradicts_the_pain_is_refused_in_every_format(pain: str, free: bool) -> None:
    document = entry(pain_2h=pain, pain_free_2h=free)
    with pytest.raises(InputError) as refused:
        diary.load(document)
    assert [p.path for p in refused.value.problems] == ["$.medications[0].pain_free_2h"]
    cell = f"sumatriptan|50 mg|oral|{TAKEN['taken_at']}||{pain}|{'yes' if free else 'no'}"
    csv = f"entry_id,patient,date,medications\ne-1,Patient/123,2026-11-20,{cell}\n"
    with pytest.raises(InputError) as from_csv:
        operations.map_diary(read_text(csv, "csv"))
    assert [(p.path, p.location) for p in from_csv.value.problems] == [("$.medications[0].pain_free_2h", "row 2, column medications")]


@given(st.sampled_from(["none", "mild", "moderate", "severe"]), st.booleans())
def test_pain_freedom_is_accepted_exactly_when_it_agrees_with_the_pain(pain: str, free: bool) -> None:
    document = entry(pain_2h=pain, pain_free_2h=free)
    if free == (pain == "none"):
        assert diary.load(document).medications[0].outcomes() == {"pain_2h": pain, "pain_free_2h": free}
    else:
        with pytest.raises(InputError):
            diary.load(document)


def test_a_medication_with_outcomes_at_the_very_end_of_9999_is_refused_where_it_was_taken() -> None:
    late = entry(headache=None, relief_2h=True) | {"date": "9999-12-31"}
    late["medications"][0]["taken_at"] = "9999-12-31T22:30:00+01:00"
    with pytest.raises(InputError) as refused:
        diary.load(late)
    assert [p.path for p in refused.value.problems] == ["$.medications[0].taken_at"]
    del late["medications"][0]["relief_2h"]
    assert diary.load(late).medications[0].outcomes() == {}


def test_csv_outcome_parts_may_be_left_empty_or_out_and_too_many_are_refused() -> None:
    head = "entry_id,patient,date,medications\ne-1,Patient/123,2026-11-20,"
    found = operations.unmap(operations.map_diary(read_text(head + f"sumatriptan|50 mg|oral|{TAKEN['taken_at']}|yes||||yes\n", "csv")))
    assert found["diary"][0]["medications"][0] == TAKEN | {"relief_2h": True, "rescue": True}
    with pytest.raises(InputError) as refused:
        operations.map_diary(read_text(head + f"sumatriptan|50 mg|oral|{TAKEN['taken_at']}|yes|||||no|x\n", "csv"))
    assert refused.value.problems[0].location == "row 2, column medications"


def test_a_medication_taken_observation_of_earlier_versions_still_unmaps() -> None:
    def code(code: str) -> dict[str, Any]:
        return {"coding": [{"system": DIARY_CS, "code": code}]}

    legacy = {"resourceType": "Observation", "identifier": [{"system": DIARY_SYSTEM, "value": "e-1/medication/0"}],
              "status": "final", "code": code("medication-taken"), "subject": {"reference": "Patient/123"},
              "effectiveDateTime": TAKEN["taken_at"],
              "valueCodeableConcept": {"coding": [{"system": RXNORM, "code": "37418"}], "text": "sumatriptan"},
              "component": [
                  {"code": code("medication-dose"), "valueQuantity": {"value": 50, "unit": "mg", "system": UCUM, "code": "mg"}},
                  {"code": code("relief-2h"), "valueBoolean": False}]}
    bundle = operations.map_diary([Located(entry(headache=None), "$")])
    entries = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "MedicationStatement"]
    old = copy.deepcopy(bundle) | {"entry": [*entries, {"resource": legacy}]}
    assert operations.unmap(old)["diary"][0]["medications"] == [{k: v for k, v in TAKEN.items() if k != "route"} | {"relief_2h": False}]
