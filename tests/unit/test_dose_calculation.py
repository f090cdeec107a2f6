"""What a pharmacist checks in a mapped order: per-kg doses calculated in kg, rounded and capped,
ceilings that stay ceilings, bags whose additive amounts are in doseAndRate, rates and durations
held to the protocol, and amounts written as a nurse reads them."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from fhir_migraine import operations
from fhir_migraine.errors import InputError
from fhir_migraine.inputs import protocols
from fhir_migraine.inputs.quantity import Quantity
from fhir_migraine.mapping.dosage import amount_text
from fhir_migraine.mapping.fhir import DOSE_CEILING_EXT, identifiers
from tests.conftest import EXAMPLES, PROTOCOLS
from tests.helpers import run_cli

LIBRARY = {p.id: p for p in (protocols.load_text(f.read_bytes()) for f in sorted(PROTOCOLS.glob("*.yaml")))}
VALPROATE_ORDER = json.loads((EXAMPLES / "orders" / "valproate-weight-based.json").read_text(encoding="utf-8"))


def _map(order: dict[str, Any], find: Any = LIBRARY.get) -> dict[str, Any]:
    return operations.map_order(order, find, now=lambda: "2026-12-01T09:00:00Z")


def _request(bundle: dict[str, Any], step_id: str) -> dict[str, Any]:
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "MedicationRequest" and identifiers(resource)[0]["value"].endswith(f"/{step_id}"):
            return resource
    raise AssertionError(f"no MedicationRequest for step {step_id}")


def _valproate(weight: str) -> dict[str, Any]:
    bundle = _map(VALPROATE_ORDER | {"weight": weight})
    return _request(bundle, "valproate")


def _doses(request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in request["dosageInstruction"][0]["doseAndRate"]:
        by_type.setdefault(entry["type"]["coding"][0]["code"], []).append(entry)
    return by_type


def test_valproate_at_70_kg_is_capped_at_1000_mg_and_the_text_shows_the_calculation() -> None:
    request = _valproate("70 kg")
    text = request["dosageInstruction"][0]["text"]
    assert text.startswith("valproate 1000 mg (15 mg/kg × 70 kg = 1050 mg, capped at 1000 mg) in ")
    calculated = _doses(request)["calculated"]
    assert [c["doseQuantity"]["value"] for c in calculated] == [1000]
    valproate = request["contained"][0]["ingredient"][1]
    assert valproate["strength"]["numerator"]["value"] == 1000


def test_a_weight_in_pounds_is_shown_in_kg_and_the_dose_rounded() -> None:
    request = _valproate("140 lb")
    text = request["dosageInstruction"][0]["text"]
    # 140 lb = 63.5 kg; 15 mg/kg x 63.5 kg = 952.5 mg, rounded to the step's 50 mg: 950 mg.
    assert "valproate 950 mg (15 mg/kg × 63.5 kg = 952.5 mg, rounded to 950 mg)" in text
    assert "lb" not in text
    assert _doses(request)["calculated"][0]["doseQuantity"]["value"] == 950


def test_the_bag_states_its_rate_in_ml_per_hour_and_the_additive_delivery_rate() -> None:
    text = _valproate("70 kg")["dosageInstruction"][0]["text"]
    # 100 mL over 60 min is 100 mL/h; 1000 mg over 60 min is 16.7 mg/min.
    assert text.endswith("IV over 60 min (100 mL/h; valproate 16.7 mg/min)")


def test_a_bag_has_its_additive_amounts_in_dose_and_rate() -> None:
    bundle = _map(json.loads((EXAMPLES / "orders" / "ed-migraine-rescue.json").read_text(encoding="utf-8")))
    fluids = _request(bundle, "fluids")
    [entry] = fluids["dosageInstruction"][0]["doseAndRate"]
    assert entry["doseQuantity"]["value"] == 2 and entry["doseQuantity"]["code"] == "g"
    assert entry["rateQuantity"]["value"] == 500 and entry["rateQuantity"]["code"] == "mL/h"
    text = fluids["dosageInstruction"][0]["text"]
    assert text.startswith("magnesium sulfate 2 g in sodium chloride 0.9% 1000 mL IV at 500 mL/h")
    assert text.endswith("(over 2 h; magnesium sulfate 1 g/h)")


def test_a_bag_without_additives_has_its_volume_as_the_dose() -> None:
    prehydration = _request(_map(VALPROATE_ORDER), "prehydration")
    [entry] = prehydration["dosageInstruction"][0]["doseAndRate"]
    assert entry["doseQuantity"]["value"] == 500 and entry["doseQuantity"]["code"] == "mL"


@pytest.mark.parametrize("bundle", sorted((EXAMPLES / "bundles").glob("*.bundle.json")), ids=lambda p: p.stem)
def test_no_example_request_carries_an_override_ceiling_as_a_maximum(bundle: Any) -> None:
    """maxDosePerAdministration, where present, is a limit the protocol declared as such."""
    for entry in json.loads(bundle.read_text(encoding="utf-8"))["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] != "MedicationRequest":
            continue
        dosage = resource["dosageInstruction"][0]
        if "maxDosePerAdministration" not in dosage:
            continue
        protocol = LIBRARY[resource["instantiatesCanonical"][0].split("|")[0].rsplit("/", 1)[-1]]
        step_id = identifiers(resource)[0]["value"].rsplit("/", 1)[-1]
        declared = next(s for s in protocol.document["steps"] if s["id"] == step_id).get("limits", {})
        assert "per_administration" in declared, f"{step_id}: maxDosePerAdministration without a declared limit"


def test_the_plan_definition_keeps_ceilings_as_an_extension() -> None:
    plan = operations.export_protocol(LIBRARY["ed-migraine-rescue"])
    activities = {r["id"]: r for r in plan["contained"] if r["resourceType"] == "ActivityDefinition"}
    dosage = activities["step-nsaid"]["dosage"][0]
    assert dosage["extension"] == [{"url": DOSE_CEILING_EXT, "valueQuantity": Quantity(Decimal(30), "mg").fhir()}]
    assert "maxDosePerAdministration" not in dosage
    bag = next(r for r in plan["contained"] if r["id"] == "bag-fluids")
    assert bag["ingredient"][1]["extension"][0]["url"] == DOSE_CEILING_EXT
    assert bag["ingredient"][1]["extension"][0]["valueQuantity"]["value"] == 4


def test_an_override_above_the_ceiling_is_still_refused() -> None:
    order = json.loads((EXAMPLES / "orders" / "ed-migraine-rescue.json").read_text(encoding="utf-8"))
    order["overrides"] = {"nsaid": {"dose": "60 mg"}}
    with pytest.raises(InputError) as caught:
        _map(order)
    assert [p.path for p in caught.value.problems] == ["$.overrides.nsaid.dose"]


def test_a_duration_override_below_the_protocol_minimum_is_refused_with_its_path() -> None:
    order = json.loads((EXAMPLES / "orders" / "preventive-nutrient.json").read_text(encoding="utf-8"))
    order["overrides"] = {"nutrients": {"duration": "5 min"}}
    with pytest.raises(InputError) as caught:
        _map(order)
    [problem] = caught.value.problems
    assert problem.path == "$.overrides.nutrients.duration"
    assert "35 min" in problem.message


def test_the_cli_refuses_a_duration_below_the_minimum_with_exit_1(tmp_path: Any) -> None:
    order = json.loads((EXAMPLES / "orders" / "preventive-nutrient.json").read_text(encoding="utf-8"))
    order["overrides"] = {"nutrients": {"duration": "5 min"}}
    file = tmp_path / "order.json"
    file.write_text(json.dumps(order), encoding="utf-8")
    run = run_cli("map", "order", str(file), "--protocols", str(PROTOCOLS))
    assert run.code == 1
    assert "$.overrides.nutrients.duration" in run.err


def test_a_weight_below_the_protocol_minimum_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        _map(VALPROATE_ORDER | {"weight": "4 kg"})
    [problem] = caught.value.problems
    assert problem.path == "$.weight" and "40 kg" in problem.message


def test_a_per_kg_dose_that_rounds_to_nothing_is_refused() -> None:
    document = copy.deepcopy(LIBRARY["valproate-weight-based"].document)
    document.pop("applies_to")
    document["steps"][1]["additives"][0]["rounding"] = "1000 mg"
    protocol = protocols.load(document)
    with pytest.raises(InputError) as caught:
        _map(VALPROATE_ORDER | {"weight": "20 kg"}, {protocol.id: protocol}.get)
    [problem] = caught.value.problems
    assert "rounds to nothing" in problem.message


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [("0.03", "g", "30 mg"), ("2", "g", "2 g"), ("1000", "ug", "1000 mcg"), ("20", "meq", "20 mEq"),
     ("0.5", "mg", "0.5 mg"), ("15", "ug/kg", "15 mcg/kg"), ("140", "[lb_av]", "140 lb")],
)
def test_amounts_are_written_as_a_nurse_reads_them(value: str, unit: str, text: str) -> None:
    assert amount_text(Quantity(Decimal(value), unit)) == text

