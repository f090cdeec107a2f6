"""Steps placed before or after another, "as needed" rules and first doses: what the FHIR says
about when each dose is given, read back from the resources themselves."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models

from fhir_migraine import operations
from fhir_migraine.errors import InputError
from fhir_migraine.inputs import protocols
from fhir_migraine.mapping.fhir import identifiers
from fhir_migraine.mapping.plandefinition import to_fhir_plan_definition
from fhir_migraine.mapping.sequencing import shift_instant
from tests.cases import ORDER, PROTOCOL
from tests.conftest import EXAMPLES, PROTOCOLS

UNIT = {"min": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "wk": timedelta(weeks=1)}


def occurrences(dosage: dict[str, Any]) -> list[datetime]:
    """Every instant a Dosage's Timing gives: boundsPeriod.start, then one period apart, count times."""
    repeat = dosage["timing"]["repeat"]
    start = datetime.fromisoformat(repeat["boundsPeriod"]["start"])
    assert repeat.get("frequency", 1) == 1
    step = repeat["period"] * UNIT[repeat["periodUnit"]] if "period" in repeat else timedelta(0)
    return [start + k * step for k in range(repeat["count"])]


def requests(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "MedicationRequest":
            found[identifiers(resource)[0]["value"].rsplit("/", 1)[-1]] = resource
    return found


def doses(request: dict[str, Any]) -> list[tuple[datetime, float]]:
    """(instant, ordered dose in mg) of every occurrence of every Dosage of a request, in time order."""
    given = []
    for dosage in request["dosageInstruction"]:
        amount = dosage["doseAndRate"][0]["doseQuantity"]
        assert amount["code"] == "mg"
        given += [(moment, amount["value"]) for moment in occurrences(dosage)]
    return sorted(given)


def _map(protocol: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    loaded = protocols.load(protocol)
    return operations.map_order(order, {loaded.id: loaded}.get, now=lambda: "2026-01-01T00:00:00Z")


def test_each_antiemetic_of_the_repeated_dhe_example_is_30_min_before_a_dhe_dose() -> None:
    bundle = json.loads((EXAMPLES / "bundles" / "dhe-repeat.bundle.json").read_text())
    found = requests(bundle)
    antiemetic, dhe = doses(found["antiemetic"]), doses(found["dhe"])
    assert len(antiemetic) == len(dhe) == 9
    dhe_times = {moment for moment, _ in dhe}
    for moment, _ in antiemetic:
        assert moment + timedelta(minutes=30) in dhe_times
    # Every DHE dose follows an antiemetic, eight hours apart, the first at the order's start + 30 min.
    start = datetime.fromisoformat(json.loads((EXAMPLES / "orders" / "dhe-repeat.json").read_text())["start"])
    assert [moment for moment, _ in dhe] == [start + timedelta(minutes=30) + k * timedelta(hours=8) for k in range(9)]
    assert antiemetic[0][0] == start


def test_the_repeated_dhe_example_starts_with_a_half_milligram_test_dose() -> None:
    bundle = json.loads((EXAMPLES / "bundles" / "dhe-repeat.bundle.json").read_text())
    dhe = requests(bundle)["dhe"]
    assert [value for _, value in doses(dhe)] == [0.5] + [1] * 8
    first, rest = dhe["dosageInstruction"]
    assert (first["sequence"], rest["sequence"]) == (1, 2), "the test dose, then the repeats"
    assert first["text"].startswith("dihydroergotamine 0.5 mg (test dose: dose 1 of 9) IV push")
    assert "1 mg IV push over 3 min, doses 2 to 9" in rest["text"]


def test_a_step_after_the_end_of_a_bag_moves_with_the_bags_duration_override() -> None:
    protocol = copy.deepcopy(PROTOCOL)
    protocol["steps"][1]["after"] = {"step": "fluids", "by": "15 min", "from": "end"}
    # 1000 mL at 500 mL/h: the bag ends after 2 h; the antiemetic 15 min later.
    found = requests(_map(protocol, ORDER))
    assert found["antiemetic"]["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"] == "2026-12-01T11:15:00Z"
    order = copy.deepcopy(ORDER) | {"overrides": {"fluids": {"duration": "90 min"}}}
    found = requests(_map(protocol, order))
    assert found["antiemetic"]["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"] == "2026-12-01T10:45:00Z"
    assert found["fluids"]["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"] == ORDER["start"]


def test_the_earliest_step_starts_at_the_order_start_and_unmap_gives_that_start_back() -> None:
    protocol = copy.deepcopy(PROTOCOL)
    protocol["steps"][2]["before"] = {"step": "fluids", "by": "1 h"}  # valproate an hour before the bag
    order = copy.deepcopy(ORDER) | {"start": "2026-12-01T09:00:00.250+05:30"}
    bundle = _map(protocol, order)
    starts = {k: r["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"] for k, r in requests(bundle).items()}
    assert starts == {"valproate": "2026-12-01T09:00:00.250+05:30", "fluids": "2026-12-01T10:00:00.250+05:30",
                      "antiemetic": "2026-12-01T10:00:00.250+05:30"}
    loaded = protocols.load(protocol)
    assert operations.unmap(bundle, {loaded.id: loaded}.get)["orders"][0]["start"] == order["start"]
    group = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "RequestGroup")
    related = {a["id"]: a.get("relatedAction") for a in group["action"]}
    assert related["valproate"] == [{"actionId": "fluids", "relationship": "before-start", "offsetDuration": {
        "value": 1, "unit": "h", "system": "http://unitsofmeasure.org", "code": "h"}}]
    # The antiemetic, placed nowhere, starts with the bag: after its start, no offset.
    assert related["antiemetic"] == [{"actionId": "fluids", "relationship": "after-start"}]


@pytest.mark.parametrize(("text", "seconds", "moved"), [
    ("2026-12-01T23:45:00Z", 1800, "2026-12-02T00:15:00Z"),
    ("2026-12-01T09:00:00.120-05:00", -90, "2026-12-01T08:58:30.120-05:00"),
    ("2026-12-31T23:59:59+14:00", 1, "2027-01-01T00:00:00+14:00"),
])
def test_a_shifted_instant_keeps_its_offset_and_fraction(text: str, seconds: int, moved: str) -> None:
    assert shift_instant(text, Decimal(seconds)) == moved


def test_a_structured_prn_is_coded_with_its_interval_and_count() -> None:
    protocol = copy.deepcopy(PROTOCOL)
    protocol["steps"][1]["prn"] = {"reason": "nausea", "text": "nausea persists", "min_interval": "4 h", "max_count": 2}
    dosage = requests(_map(protocol, ORDER))["antiemetic"]["dosageInstruction"][0]
    assert dosage["asNeededCodeableConcept"] == {
        "coding": [{"system": "http://snomed.info/sct", "code": "422587007", "display": "Nausea"}], "text": "nausea persists"}
    repeat = dosage["timing"]["repeat"]
    assert (repeat["count"], repeat["frequency"], repeat["period"], repeat["periodUnit"]) == (2, 1, 4, "h")
    assert dosage["text"].endswith("as needed for nausea: nausea persists, at least 4 h apart, at most 2 doses")


def test_a_free_text_prn_keeps_its_text_only() -> None:
    protocol = copy.deepcopy(PROTOCOL)
    protocol["steps"][1]["prn"] = "nausea persists"
    dosage = requests(_map(protocol, ORDER))["antiemetic"]["dosageInstruction"][0]
    assert dosage["asNeededCodeableConcept"] == {"text": "nausea persists"}
    assert dosage["timing"]["repeat"]["count"] == 1


def _pain(score: int | None) -> dict[str, Any]:
    observation: dict[str, Any] = {"resourceType": "Observation", "status": "final",
                                   "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]}}
    if score is not None:
        observation["valueInteger"] = score
    return observation


def test_the_condition_of_a_conditional_prn_holds_from_the_pain_level_on() -> None:
    bundle = json.loads((EXAMPLES / "bundles" / "valproate-weight-based.bundle.json").read_text())
    group = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "RequestGroup")
    action = next(a for a in group["action"] if a["id"] == "nsaid")
    (condition,) = action["condition"]
    assert condition["kind"] == "applicability"
    assert condition["expression"]["language"] == "text/fhirpath"
    expression = condition["expression"]["expression"]
    results = {score: evaluate(_pain(score), expression, {}, models["r4"]) for score in (None, 3, 4, 9)}
    assert results == {None: [], 3: [False], 4: [True], 9: [True]}
    other = _pain(6) | {"code": {"coding": [{"system": "http://loinc.org", "code": "38208-5"}]}}
    assert evaluate(other, expression, {}, models["r4"]) == [False]
    charted = _pain(None) | {"valueQuantity": {"value": 5, "unit": "{score}"}}
    assert evaluate(charted, expression, {}, models["r4"]) == [True], "a score charted as a Quantity counts too"
    low = charted | {"valueQuantity": {"value": 2, "unit": "{score}"}}
    assert evaluate(low, expression, {}, models["r4"]) == [False]
    assert action["relatedAction"][0]["relationship"] == "after-end"


def test_the_exported_plan_definition_carries_placements_conditions_and_the_first_dose() -> None:
    plan = to_fhir_plan_definition(protocols.load_text((PROTOCOLS / "valproate-weight-based.yaml").read_text()))
    nsaid = next(a for a in plan["action"] if a["id"] == "nsaid")
    assert nsaid["relatedAction"][0]["actionId"] == "valproate"
    assert nsaid["condition"][0]["expression"]["expression"].endswith(">= 4")
    plan = to_fhir_plan_definition(protocols.load_text((PROTOCOLS / "dhe-repeat.yaml").read_text()))
    antiemetic = next(a for a in plan["action"] if a["id"] == "antiemetic")
    assert antiemetic["relatedAction"][0] == {"actionId": "dhe", "relationship": "before-start", "offsetDuration": {
        "value": 30, "unit": "min", "system": "http://unitsofmeasure.org", "code": "min"}}
    dhe = next(c for c in plan["contained"] if c.get("id") == "step-dhe")
    assert [d["doseAndRate"][0]["doseQuantity"]["value"] for d in dhe["dosage"]] == [0.5, 1]
    assert [d["timing"]["repeat"]["count"] for d in dhe["dosage"]] == [1, 8]


def _dhe_bundle() -> dict[str, Any]:
    return json.loads((EXAMPLES / "bundles" / "dhe-repeat.bundle.json").read_text())


def _dhe_protocol() -> protocols.Protocol:
    return protocols.load_text((PROTOCOLS / "dhe-repeat.yaml").read_text())


def test_unmap_with_the_protocol_finds_the_start_when_the_earliest_step_is_missing() -> None:
    bundle = _dhe_bundle()
    bundle["entry"] = [e for e in bundle["entry"] if not identifiers(e["resource"])[0]["value"].endswith("/antiemetic")]
    protocol = _dhe_protocol()
    order = json.loads((EXAMPLES / "orders" / "dhe-repeat.json").read_text())
    assert operations.unmap(bundle, {protocol.id: protocol}.get)["orders"][0]["start"] == order["start"]
    # Without the protocol only the earliest start is known: the DHE's, 30 minutes later.
    assert operations.unmap(bundle)["orders"][0]["start"] == "2026-12-04T06:30:00Z"


def test_unmap_with_the_protocol_refuses_a_step_whose_start_contradicts_it() -> None:
    bundle = _dhe_bundle()
    index, request = next((i, e["resource"]) for i, e in enumerate(bundle["entry"])
                          if identifiers(e["resource"])[0]["value"].endswith("/dhe"))
    request["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"] = "2026-12-04T06:45:00Z"
    protocol = _dhe_protocol()
    with pytest.raises(InputError) as refused:
        operations.unmap(bundle, {protocol.id: protocol}.get)
    (problem,) = refused.value.problems
    assert problem.path == f"$.entry[{index}].resource.dosageInstruction[0].timing.repeat.boundsPeriod.start"
    assert "step 'dhe' starts 30 min after the session's start" in problem.message
