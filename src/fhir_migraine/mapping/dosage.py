"""One step's Dosage: its text, timing, route, method and doseAndRate, and a bag's contained
Medication. Used by the orders and by the PlanDefinition export (without a patient).

Spec: https://hl7.org/fhir/R4/dosage.html
"""

from __future__ import annotations

from typing import Any

from fhir_migraine import terminology
from fhir_migraine.inputs.orders import Dose, ResolvedStep
from fhir_migraine.inputs.protocols import Protocol, Schedule, Step
from fhir_migraine.inputs.quantity import Quantity, json_number
from fhir_migraine.mapping.dose_limits import limit_elements
from fhir_migraine.mapping.fhir import DOSE_RATE_TYPE, ORDERED_DOSE_EXT, Resource, concept, profile

ROUTE_ABBREVIATION = {"intravenous": "IV", "subcutaneous": "SC", "intramuscular": "IM"}


def fhir_timing(schedule: Schedule, start: str | None, length: Quantity | None) -> dict[str, Any]:
    """Timing.repeat for the protocol schedule; ``length`` is the duration of one administration."""
    repeat: dict[str, Any] = {}
    if start is not None:
        repeat["boundsPeriod"] = {"start": start}
    repeat["count"] = schedule.count
    if schedule.kind != "once":
        assert schedule.every is not None and schedule.unit is not None
        repeat.update(frequency=1, period=json_number(schedule.every), periodUnit=schedule.unit)
    if length is not None:
        repeat.update(duration=json_number(length.value), durationUnit=length.unit)
    return {"repeat": repeat}


def _dose_and_rate(dose: Dose) -> list[dict[str, Any]]:
    """An ordered dose, and the calculated one when it was per body weight."""
    entries = [{"type": _rate_type("ordered"), "doseQuantity": dose.ordered.fhir()}]
    if dose.per_kg:
        entries.append({"type": _rate_type("calculated"), "doseQuantity": dose.given.fhir()})
    return entries


def _rate_type(code: str) -> dict[str, Any]:
    display = {"ordered": "Ordered", "calculated": "Calculated"}[code]
    return {"coding": [{"system": DOSE_RATE_TYPE, "code": code, "display": display}]}


def dosage_text(step: Step, resolved: ResolvedStep, weight: Quantity | None) -> str:
    """A human reading of the dosage, as a clinician would write it."""
    route = ROUTE_ABBREVIATION[step.route]
    if step.type == "infusion":
        assert step.base is not None and step.volume is not None
        parts = [f"{step.base.name} {step.volume.text()}"]
        parts += [f"+ {a.drug.name} {_amount(a.dose, weight)}" for a in resolved.additives]
        pace = f"at {resolved.rate.text()}" if resolved.rate else f"over {_text(resolved.duration)}"
        text = " ".join(parts) + f" {route} {pace}"
    else:
        assert step.drug is not None and resolved.dose is not None
        amount = _amount(resolved.dose, weight)
        how = "push" if step.type == "push" else "injection"
        text = f"{step.drug.name} {amount} {route} {how}"
        if step.over is not None:
            text += f" over {step.over.text()}"
    if step.prn:
        text += f", as needed: {step.prn}"
    return text


def _amount(dose: Dose, weight: Quantity | None) -> str:
    if dose.per_kg and weight is not None:
        return f"{dose.given.text()} ({dose.ordered.text()} x {weight.text()})"
    return dose.given.text()


def _text(quantity: Quantity | None) -> str:
    return quantity.text() if quantity else ""


def to_fhir_dosage(protocol: Protocol, resolved: ResolvedStep, start: str | None, weight: Quantity | None) -> dict[str, Any]:
    """The Dosage of one step (also used by the PlanDefinition export, without a start)."""
    step = resolved.step
    length = resolved.duration if step.type == "infusion" else step.over
    dosage: dict[str, Any] = {
        "sequence": resolved.sequence,
        "text": dosage_text(step, resolved, weight),
        "timing": fhir_timing(protocol.schedule, start, length),
    }
    if step.prn:
        dosage["asNeededCodeableConcept"] = {"text": step.prn}
    dosage["route"] = concept(terminology.route(step.route))
    dosage["method"] = concept(terminology.method(step.type))
    if step.type == "infusion":
        assert step.volume is not None
        entry: dict[str, Any] = {"type": _rate_type("ordered"), "doseQuantity": step.volume.fhir()}
        if resolved.rate is not None:
            entry["rateQuantity"] = resolved.rate.fhir()
        dosage["doseAndRate"] = [entry]
    else:
        assert resolved.dose is not None
        dosage["doseAndRate"] = _dose_and_rate(resolved.dose)
        if step.max_dose is not None and step.limits is None:
            dosage["maxDosePerAdministration"] = step.max_dose.fhir()
    dosage.update(limit_elements(step))
    return dosage


def to_fhir_bag_medication(resolved: ResolvedStep) -> Resource:
    """The contained Medication of a bag: base fluid (inactive) and additives with their amounts."""
    step = resolved.step
    assert step.base is not None and step.volume is not None
    ingredients: list[dict[str, Any]] = [
        {"itemCodeableConcept": concept(step.base.code, step.base.name), "isActive": False}
    ]
    for additive in resolved.additives:
        ingredient: dict[str, Any] = {}
        if additive.dose.per_kg:
            # The per-kg dose the amount was calculated from; R4 has no element for it.
            ingredient["extension"] = [{"url": ORDERED_DOSE_EXT, "valueQuantity": additive.dose.ordered.fhir()}]
        ingredient["itemCodeableConcept"] = concept(additive.drug.code, additive.drug.name)
        ingredient["isActive"] = True
        # Strength of an additive = the amount added to the whole bag volume.
        ingredient["strength"] = {"numerator": additive.dose.given.fhir(), "denominator": step.volume.fhir()}
        ingredients.append(ingredient)
    names = " + ".join([step.base.name, *(a.drug.name for a in resolved.additives)])
    return {
        "resourceType": "Medication",
        "id": f"bag-{step.id}",
        "meta": profile("migraine-bag-medication"),
        "code": {"text": f"{names} ({step.volume.text()} bag)"},
        "amount": {
            "numerator": step.volume.fhir(),
            "denominator": {"value": 1, "unit": "bag", "system": terminology.UCUM, "code": "{bag}"},
        },
        "ingredient": ingredients,
    }
