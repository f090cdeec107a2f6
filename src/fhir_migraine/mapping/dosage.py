"""One step's Dosage: its text, timing, route, method and doseAndRate, and a bag's contained
Medication. Used by the orders and by the PlanDefinition export (without a patient).

Spec: https://hl7.org/fhir/R4/dosage.html
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.inputs.orders import Dose, ResolvedStep
from fhir_migraine.inputs.protocols import Protocol, Schedule, Step
from fhir_migraine.inputs.quantity import Quantity, json_number, number_text, unit_display
from fhir_migraine.inputs.sequencing import Prn, seconds
from fhir_migraine.mapping.dose_limits import limit_elements
from fhir_migraine.mapping.fhir import DOSE_RATE_TYPE, ORDERED_DOSE_EXT, Resource, concept, profile
from fhir_migraine.mapping.medication_codes import medication_concept
from fhir_migraine.mapping.narrative import with_text
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


def dosage_text(protocol: Protocol, resolved: ResolvedStep, part: str = "all") -> str:
    """A human reading of the dosage, as a clinician would write it: amounts in the units a nurse
    reads (30 mg, not 0.03 g; mcg, not ug), a per-kg dose with its calculation in kg, a bag with
    its rate in mL/h and each additive's delivery rate, a first dose and the repeats counted."""
    step = resolved.step
    route = ROUTE_ABBREVIATION[step.route]
    if step.type == "infusion":
        assert step.base is not None and step.volume is not None
        bag = f"{step.base.name} {amount_text(step.volume)}"
        if resolved.additives:
            bag = " + ".join(f"{a.drug.name} {_amount(a.dose)}" for a in resolved.additives) + f" in {bag}"
        text = f"{bag} {route} {_pace(step, resolved)}"
    else:
        assert step.drug is not None and resolved.dose is not None
        amount = _amount(resolved.dose)
        if part == "first" and resolved.first_dose is not None:
            amount = f"{_amount(resolved.first_dose)} (test dose: dose 1 of {protocol.schedule.count})"
        how = "push" if step.type == "push" else "injection"
        text = f"{step.drug.name} {amount} {route} {how}"
        if step.over is not None:
            text += f" over {amount_text(step.over)}"
    if part == "rest":
        text += f", doses 2 to {protocol.schedule.count}"
    text += placement_text(protocol, step) + prn_text(step.prn)
    if step.off_label is not None:
        text += f", off-label regimen approved by {step.off_label.approved_by}"
    return "; ".join([text, *step.instructions])


def placement_text(protocol: Protocol, step: Step) -> str:
    """``, 30 min before each dihydroergotamine dose`` or ``, 60 min after the end of the valproate
    bag``: the other step named as the nurse sees it, its edge always said."""
    relation = step.relation
    if relation is None:
        return ""
    by = f"{amount_text(relation.by)} " if relation.by is not None else "right "
    other = protocol.step(relation.step)
    if other is not None and other.type != "infusion" and other.drug is not None:
        target = ("each " if protocol.schedule.count > 1 else "the ") + f"{other.drug.name} dose"
        if relation.edge == "end":
            target = f"the end of {target}"
    else:
        target = f"the {relation.edge} of the {relation.step} bag"
    return f", {by}{relation.kind} {target}"


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
        text += f", at least {amount_text(prn.min_interval)} apart"
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


def amount_text(quantity: Quantity) -> str:
    """A quantity as a clinician writes it: no fraction of a gram (0.03 g is 30 mg), mcg for ug
    (the ISMP list of error-prone abbreviations), mEq, units."""
    if quantity.unit == "g" and quantity.value < 1:
        quantity = quantity.to("mg")
    return f"{number_text(quantity.value)} {unit_display(quantity.unit)}"


def _amount(dose: Dose) -> str:
    """The amount given; for a per-kg dose, how it was reached from the weight in kg."""
    given = amount_text(dose.given)
    if not dose.per_kg or dose.weight is None or dose.calculated is None:
        return given
    work = f"{amount_text(dose.ordered)} × {amount_text(dose.weight)} = {amount_text(dose.calculated)}"
    if dose.rounded is not None and dose.rounded != dose.calculated:
        work += f", rounded to {amount_text(dose.rounded)}"
    if dose.cap is not None:
        work += f", capped at {amount_text(dose.cap)}"
    return f"{given} ({work})"


def _pace(step: Step, resolved: ResolvedStep) -> str:
    """``at 500 mL/h (over 2 h; magnesium sulfate 1 g/h)`` or ``over 60 min (100 mL/h; ...)``."""
    assert step.volume is not None
    time = step.running_time(resolved.rate, resolved.duration)
    assert time is not None
    flow = Quantity(_significant(step.volume.to("mL").value / time.to("h").value), "mL/h")
    delivery = [f"{a.drug.name} {_delivery_rate(a.dose.given, time)}"
                for a in resolved.additives if "/" not in a.dose.given.dimension]  # not per kg without a weight
    if resolved.rate is not None:
        return f"at {amount_text(resolved.rate)} ({'; '.join([f'over {_time_text(time)}', *delivery])})"
    return f"over {amount_text(time)} ({'; '.join([amount_text(flow), *delivery])})"


def _delivery_rate(amount: Quantity, time: Quantity) -> str:
    """How fast an additive goes in: mg or mcg per minute, grams and other amounts per hour."""
    per = "min" if amount.unit in ("mg", "ug") else "h"
    value = _significant(amount.value / time.to(per).value)
    return f"{amount_text(Quantity(value, amount.unit))}/{per}"


def _time_text(time: Quantity) -> str:
    minutes = time.to("min").value.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def _significant(value: Decimal, digits: int = 3) -> Decimal:
    """``value`` to ``digits`` significant digits (16.666… -> 16.7; 1000 stays 1000)."""
    if value >= 10 ** (digits - 1):
        return value.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    exponent = value.adjusted() - digits + 1
    return value.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP).normalize()


def to_fhir_dosages(protocol: Protocol, resolved: ResolvedStep, start: str | None) -> list[dict[str, Any]]:
    """The Dosages of one step: one, or with a first dose two sequential ones (``sequence`` 1 and 2:
    "the order in which the dosage instructions should be applied", https://hl7.org/fhir/R4/dosage.html),
    the first occurrence and the occurrences from the second on."""
    if resolved.first_dose is None:
        return [to_fhir_dosage(protocol, resolved, start)]
    return [to_fhir_dosage(protocol, resolved, start, part) for part in ("first", "rest")]


def to_fhir_dosage(protocol: Protocol, resolved: ResolvedStep, start: str | None, part: str = "all") -> dict[str, Any]:
    """The Dosage of one step (also used by the PlanDefinition export, without a start); ``start``
    is the session's, moved by the step's offset (inputs/sequencing.py)."""
    step = resolved.step
    length = resolved.duration if step.type == "infusion" else step.over
    own_start = shift_instant(start, resolved.offset) if start is not None else None
    dosage: dict[str, Any] = {
        "sequence": 2 if part == "rest" else 1,  # within this request: the step's place is the group's prefix
        "text": dosage_text(protocol, resolved, part),
        "timing": fhir_timing(protocol.schedule, own_start, length, prn=step.prn, part=part),
    }
    if step.prn is not None:
        dosage["asNeededCodeableConcept"] = fhir_as_needed(step.prn)
    dosage["route"] = concept(terminology.route(step.route))
    dosage["method"] = concept(terminology.method(step.type))
    if step.type == "infusion":
        dosage["doseAndRate"] = _bag_dose_and_rate(resolved)
    else:
        dose = resolved.first_dose if part == "first" else resolved.dose
        assert dose is not None
        dosage["doseAndRate"] = _dose_and_rate(dose)
    dosage.update(limit_elements(step))
    return dosage


def _bag_dose_and_rate(resolved: ResolvedStep) -> list[dict[str, Any]]:
    """A bag's dose as in the R4 IV admixture example (medicationrequest0322: KCl 20 mEq, the one
    additive's amount, as the dose; the bag the medication): a bag with one additive gives that
    additive's dose (ordered, and calculated when per kg); a bag with several additives, or none,
    gives its volume, since doseAndRate cannot say which ingredient a dose belongs to (the
    amounts are each ingredient's strength). The rate in mL/h is on the ordered entry."""
    step = resolved.step
    assert step.volume is not None
    if len(resolved.additives) == 1:
        entries = _dose_and_rate(resolved.additives[0].dose)
    else:
        entries = [{"type": _rate_type("ordered"), "doseQuantity": step.volume.fhir()}]
    if resolved.rate is not None:
        entries[0]["rateQuantity"] = resolved.rate.fhir()
    return entries


def to_fhir_bag_medication(resolved: ResolvedStep) -> Resource:
    """The contained Medication of a bag: base fluid (inactive) and additives with their amounts."""
    step = resolved.step
    assert step.base is not None and step.volume is not None
    ingredients: list[dict[str, Any]] = [
        {"itemCodeableConcept": medication_concept(step.base, step.route), "isActive": False}
    ]
    for additive in resolved.additives:
        ingredient: dict[str, Any] = {}
        if additive.dose.per_kg:
            # The per-kg dose the amount was calculated from; R4 has no element for it.
            ingredient["extension"] = [{"url": ORDERED_DOSE_EXT, "valueQuantity": additive.dose.ordered.fhir()}]
        ingredient["itemCodeableConcept"] = medication_concept(additive.drug, step.route)
        ingredient["isActive"] = True
        # Strength of an additive = the amount added to the whole bag volume.
        ingredient["strength"] = {"numerator": additive.dose.given.fhir(), "denominator": step.volume.fhir()}
        ingredients.append(ingredient)
    names = " + ".join([step.base.name, *(a.drug.name for a in resolved.additives)])
    return with_text({
        "resourceType": "Medication",
        "id": f"bag-{step.id}",
        "meta": profile("migraine-bag-medication"),
        "code": {"text": f"{names} ({step.volume.text()} bag)"},
        "amount": {
            "numerator": step.volume.fhir(),
            "denominator": {"value": 1, "unit": "bag", "system": terminology.UCUM, "code": "{bag}"},
        },
        "ingredient": ingredients,
    })
