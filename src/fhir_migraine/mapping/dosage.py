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
from fhir_migraine.inputs.sequencing import Prn, seconds
from fhir_migraine.mapping.fhir import DOSE_RATE_TYPE, ORDERED_DOSE_EXT, Resource, concept, profile
from fhir_migraine.mapping.sequencing import shift_instant

ROUTE_ABBREVIATION = {"intravenous": "IV", "subcutaneous": "SC", "intramuscular": "IM"}


def fhir_timing(schedule: Schedule, start: str | None, length: Quantity | None, *,
                prn: Prn | None = None, part: str = "all") -> dict[str, Any]:
    """Timing.repeat for the protocol schedule; ``start`` is the step's own first occurrence,
    ``length`` the duration of one administration. ``part`` "first" is the first occurrence
    alone, "rest" the occurrences from the second on (a step with a first dose). An "as
    needed" step with a maximum count may be given up to ``count`` times, at least ``period``
    apart (https://hl7.org/fhir/R4/datatypes.html#Timing)."""
    repeat: dict[str, Any] = {}
    if start is not None:
        if part == "rest":
            assert schedule.every is not None and schedule.unit is not None
            start = shift_instant(start, seconds(Quantity(schedule.every, schedule.unit)))
        repeat["boundsPeriod"] = {"start": start}
    if prn is not None and prn.max_count is not None:
        repeat["count"] = prn.max_count
        if prn.min_interval is not None:
            interval = prn.min_interval
            repeat.update(frequency=1, period=json_number(interval.value), periodUnit=interval.unit)
    else:
        repeat["count"] = {"all": schedule.count, "first": 1, "rest": schedule.count - 1}[part]
        if schedule.kind != "once" and part != "first":
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


def dosage_text(step: Step, resolved: ResolvedStep, weight: Quantity | None, part: str = "all") -> str:
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
        if part == "first" and resolved.first_dose is not None:
            amount = f"first dose {_amount(resolved.first_dose, weight)}, then {amount}"
        how = "push" if step.type == "push" else "injection"
        text = f"{step.drug.name} {amount} {route} {how}"
        if step.over is not None:
            text += f" over {step.over.text()}"
    if part == "rest":
        text += ", from the second dose"
    return text + placement_text(step) + prn_text(step.prn)


def placement_text(step: Step) -> str:
    relation = step.relation
    if relation is None:
        return ""
    by = f"{relation.by.text()} " if relation.by is not None else "right "
    edge = "the end of " if relation.edge == "end" else ""
    return f", {by}{relation.kind} {edge}{relation.step}"


def prn_text(prn: Prn | None) -> str:
    if prn is None:
        return ""
    if not prn.structured:
        return f", as needed: {prn.text}"
    text = ", as needed"
    if prn.code is not None:
        text += f" for {prn.code.display.lower()}"
    if prn.text:
        text += f": {prn.text}"
    if prn.pain_at_least is not None:
        text += f", if pain {prn.pain_at_least}/10 or more"
    if prn.min_interval is not None:
        text += f", at least {prn.min_interval.text()} apart"
    if prn.max_count is not None:
        text += f", at most {prn.max_count} dose{'s' if prn.max_count > 1 else ''}"
    return text


def fhir_as_needed(prn: Prn) -> dict[str, Any]:
    """Dosage.asNeededCodeableConcept: the coded reason, with the free text (or the condition) as text."""
    concept_: dict[str, Any] = {}
    if prn.code is not None:
        concept_["coding"] = [prn.code.coding()]
    text = prn.text or (prn.code.display if prn.code is not None else None)
    if prn.pain_at_least is not None and not prn.text:
        text = f"pain {prn.pain_at_least}/10 or more"
    if text:
        concept_["text"] = text
    return concept_


def _amount(dose: Dose, weight: Quantity | None) -> str:
    if dose.per_kg and weight is not None:
        return f"{dose.given.text()} ({dose.ordered.text()} x {weight.text()})"
    return dose.given.text()


def _text(quantity: Quantity | None) -> str:
    return quantity.text() if quantity else ""


def to_fhir_dosages(protocol: Protocol, resolved: ResolvedStep, start: str | None,
                    weight: Quantity | None) -> list[dict[str, Any]]:
    """The Dosages of one step: one, or with a first dose two concurrent ones (the same
    ``sequence``: https://hl7.org/fhir/R4/dosage.html) whose timings do not overlap, the first
    occurrence and the occurrences from the second on."""
    if resolved.first_dose is None:
        return [to_fhir_dosage(protocol, resolved, start, weight)]
    return [to_fhir_dosage(protocol, resolved, start, weight, part) for part in ("first", "rest")]


def to_fhir_dosage(protocol: Protocol, resolved: ResolvedStep, start: str | None, weight: Quantity | None,
                   part: str = "all") -> dict[str, Any]:
    """The Dosage of one step (also used by the PlanDefinition export, without a start); ``start``
    is the session's, moved by the step's offset (inputs/sequencing.py)."""
    step = resolved.step
    length = resolved.duration if step.type == "infusion" else step.over
    own_start = shift_instant(start, resolved.offset) if start is not None else None
    dosage: dict[str, Any] = {
        "sequence": resolved.sequence,
        "text": dosage_text(step, resolved, weight, part),
        "timing": fhir_timing(protocol.schedule, own_start, length, prn=step.prn, part=part),
    }
    if step.prn is not None:
        dosage["asNeededCodeableConcept"] = fhir_as_needed(step.prn)
    dosage["route"] = concept(terminology.route(step.route))
    dosage["method"] = concept(terminology.method(step.type))
    if step.type == "infusion":
        assert step.volume is not None
        entry: dict[str, Any] = {"type": _rate_type("ordered"), "doseQuantity": step.volume.fhir()}
        if resolved.rate is not None:
            entry["rateQuantity"] = resolved.rate.fhir()
        dosage["doseAndRate"] = [entry]
    else:
        dose = resolved.first_dose if part == "first" else resolved.dose
        assert dose is not None
        dosage["doseAndRate"] = _dose_and_rate(dose)
        if step.max_dose is not None:
            dosage["maxDosePerAdministration"] = step.max_dose.fhir()
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
