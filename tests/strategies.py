"""Hypothesis strategies: valid protocols and orders, and the order each should unmap to."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from fhir_migraine import terminology

DRUGS = [d for d in terminology.drug_names() if d not in ("sodium chloride",)]
INDICATIONS = ["G43.909", "G43.911", "G43.919", "G43.019", "G43.709"]
# A status-migrainosus protocol needs an indication with status migrainosus (G43.xx1).
STATUS_MIGRAINOSUS_INDICATIONS = ["G43.911", "G43.011", "G43.111", "G43.701", "G43.E11"]
PRIORITIES = ["routine", "urgent", "asap", "stat"]
SLUG = st.from_regex(r"\A[a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,2}\Z")


def _label(drug: str) -> dict[str, Any]:
    return terminology.administration_limits(drug, "intravenous") or {}


def _lowest(drug: str, per_kg: bool) -> int:
    """The lowest whole dose (mg, or mg/kg) to draw for a drug with a labelled plausible minimum, so
    that half of it (an override) given to the lightest patient (3 kg) is still above it."""
    minimum = _label(drug).get("plausible_minimum")
    if minimum is None:
        return 1
    value, unit = minimum.split()
    in_mg = Decimal(value) * (1000 if unit == "g" else 1)
    # Decimal's // truncates towards zero, so round up with ceil: never 0 (a dose must be above zero).
    return max(1, math.ceil(2 * in_mg / (3 if per_kg else 1)))


APPROVAL = {"reason": "generated protocol", "approved_by": "Pharmacy and Therapeutics Committee"}


def canonical(value: Decimal, unit: str) -> str:
    return f"{format(value.normalize(), 'f')} {unit}"


@st.composite
def quantity(draw: Any, unit: str, low: int = 1, high: int = 1000) -> tuple[str | dict[str, Any], str, Decimal]:
    """(input form, canonical text, value): written as text (maybe with trailing zeros) or an object."""
    cents = draw(st.integers(low * 100, high * 100))
    value = Decimal(cents) / 100
    form = draw(st.sampled_from(["text", "padded", "object"]))
    if form == "text":
        raw: str | dict[str, Any] = canonical(value, unit)
    elif form == "padded":
        raw = f"{value:.2f} {unit}"
    else:
        raw = {"value": int(value) if value == value.to_integral() else float(value), "unit": unit}
    return raw, canonical(value, unit), value


@st.composite
def instants(draw: Any) -> str:
    moment = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31)))
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if draw(st.booleans()):
        text += f".{draw(st.integers(0, 999)):03d}"
    minutes = draw(st.sampled_from([0, 60, -300, 330, 345, -570, 840, -720, 525]))
    if minutes == 0 and draw(st.booleans()):
        return text + "Z"
    sign = "+" if minutes >= 0 else "-"
    return text + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


PRN_REASONS = terminology.prn_reason_names()
FREE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda s: s.strip() == s and s
)


@st.composite
def prn(draw: Any, schedule: dict[str, Any]) -> str | dict[str, Any]:
    """Free text, or a coded reason with maybe a text, a pain condition and (given once) a count."""
    if draw(st.booleans()):
        return str(draw(FREE_TEXT))
    value: dict[str, Any] = {"reason": draw(st.sampled_from(PRN_REASONS))}
    if draw(st.booleans()):
        value["text"] = draw(FREE_TEXT)
    if draw(st.booleans()):
        value["when"] = {"pain_at_least": draw(st.integers(0, 10))}
    if schedule["kind"] == "once" and draw(st.booleans()):
        value["max_count"] = draw(st.integers(1, 6))
        if value["max_count"] > 1 or draw(st.booleans()):
            value["min_interval"] = draw(quantity(draw(st.sampled_from(["min", "h"])), 1, 12))[0]
    return value


def repeats(schedule: dict[str, Any]) -> bool:
    """Whether a step of this schedule may have a first dose (two or more doses, a fixed period)."""
    return schedule["kind"] != "once" and schedule["count"] >= 2 and schedule["unit"] != "mo"


@st.composite
def push_step(draw: Any, step_id: str, schedule: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A push or injection step, and what the test needs to know of it."""
    kind = draw(st.sampled_from(["push", "injection"]))
    per_kg = draw(st.booleans())
    drug = draw(st.sampled_from(DRUGS))
    low = _lowest(drug, per_kg)
    raw, text, value = draw(quantity("mg/kg" if per_kg else "mg", low, low + 29))
    step: dict[str, Any] = {"id": step_id, "type": kind, "drug": drug, "dose": raw}
    if kind == "injection":
        step["route"] = draw(st.sampled_from(["subcutaneous", "intramuscular"]))
    limit = value * (200 if per_kg else 2)
    if draw(st.booleans()):
        step["max_dose"] = canonical(limit, "mg")
    if per_kg and draw(st.booleans()):
        step["rounding"] = "1 mg"  # at least 0.5 mg/kg x 3 kg: never rounds to nothing
    if draw(st.booleans()):
        # Generous declared limits: at most 20 doses of the schedule, each at most ``limit``.
        most = canonical(limit * 40, "mg")
        step["limits"] = {"per_administration": canonical(limit, "mg"), "per_period": f"{most}/24 h", "per_course": most}
    if kind == "push" and draw(st.booleans()):
        step["over"] = draw(quantity("min", 1, 30))[0]
    if _label(drug).get("per_period") or draw(st.booleans()):
        step["off_label"] = APPROVAL  # a repeated schedule may go beyond the label's maximum
    if draw(st.booleans()):
        step["exceptions"] = [{"rule": "rate", **APPROVAL}]
    if draw(st.booleans()):
        step["prn"] = draw(prn(schedule))
    if repeats(schedule) and draw(st.booleans()):
        step["first_dose"] = canonical(value / 2, "mg/kg" if per_kg else "mg")
    if draw(st.booleans()):
        step["instructions"] = draw(st.lists(st.sampled_from(["not as a bolus", "flush with 10 mL saline after",
                                                              "through a 0.2 micron filter"]), min_size=1, max_size=3))
    return step, {"dose": text, "per_kg": per_kg, "value": value, "limit": limit}


@st.composite
def infusion_step(draw: Any, step_id: str, schedule: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(DRUGS), max_size=3, unique=True))
    additives, texts = [], {}
    for name in names:
        if _lowest(name, False) > 1:
            unit = "g"
        elif _label(name).get("plausible_minimum"):
            unit = draw(st.sampled_from(["mg", "g"]))  # 1 mg or more: above every labelled minimum below 1 mg
        else:
            unit = draw(st.sampled_from(["mg", "g", "ug", "meq"]))
        raw, text, value = draw(quantity(unit, 1, 500))
        additive: dict[str, Any] = {"drug": name, "dose": raw}
        if not any("limits" in a for a in additives) and draw(st.booleans()):
            additive["limits"] = {"per_administration": canonical(value * 2, unit),
                                  "per_period": canonical(value * 40, unit) + "/24 h"}
        additives.append(additive)
        texts[name] = text
    volume_raw, _, volume = draw(quantity("mL", 50, 1000))
    step: dict[str, Any] = {
        "id": step_id,
        "type": "infusion",
        "base": {"drug": draw(st.sampled_from(["sodium chloride 0.9%", "normal saline", "sodium chloride"])),
                 "volume": volume_raw},
    }
    if additives:
        step["additives"] = additives
    if any(_label(name).get("per_period") for name in names) or draw(st.booleans()):
        step["off_label"] = APPROVAL  # an additive may go beyond its label's maximum
    if draw(st.booleans()):
        step["exceptions"] = [{"rule": "rate", **APPROVAL}]
    pace = draw(st.sampled_from(["rate", "duration"]))
    raw, text, value = draw(quantity("mL/h" if pace == "rate" else "min", 1, 999))
    step[pace] = raw
    if draw(st.booleans()):
        step["prn"] = draw(prn(schedule))
    minutes = volume / value * 60 if pace == "rate" else value
    return step, {"additives": texts, pace: text, "minutes": minutes}


@st.composite
def placements(draw: Any, steps: list[dict[str, Any]]) -> None:
    """Places some steps before or after an earlier one (so never in a cycle); after the end only
    of a step whose length is known (a bag, a push with 'over')."""
    for i, step in enumerate(steps[1:], start=1):
        if not draw(st.booleans()):
            continue
        target = steps[draw(st.integers(0, i - 1))]
        placement: dict[str, Any] = {"step": target["id"]}
        if draw(st.booleans()):
            placement["by"] = draw(quantity(draw(st.sampled_from(["min", "h"])), 1, 90))[0]
        if (target["type"] == "infusion" or "over" in target) and draw(st.booleans()):
            placement["from"] = draw(st.sampled_from(["start", "end"]))
        step[draw(st.sampled_from(["before", "after"]))] = placement


@st.composite
def protocol_and_order(draw: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A valid protocol, a valid order for it, and the order ``unmap`` must give back."""
    schedule = draw(
        st.one_of(
            st.just({"kind": "once"}),
            st.builds(lambda e, u, c: {"kind": "interval", "every": e, "unit": u, "count": c},
                      st.integers(1, 12), st.sampled_from(["d", "wk", "mo"]), st.integers(1, 20)),
            st.builds(lambda e, u, c: {"kind": "repeat", "every": e, "unit": u, "count": c},
                      st.integers(1, 24), st.sampled_from(["min", "h", "d"]), st.integers(1, 20)),
        )
    )
    ids = draw(st.lists(SLUG, min_size=1, max_size=5, unique=True))
    steps, facts = [], {}
    for step_id in ids:
        step, fact = draw(st.one_of(push_step(step_id, schedule), infusion_step(step_id, schedule)))
        steps.append(step)
        facts[step_id] = fact
    draw(placements(steps))
    protocol: dict[str, Any] = {
        "id": draw(SLUG), "version": draw(st.sampled_from(["1", "1.0", "2.3.1"])),
        "title": "Generated protocol", "intent": draw(st.sampled_from(["acute", "status-migrainosus", "preventive"])),
        "schedule": schedule, "steps": steps,
    }
    if protocol["intent"] == "status-migrainosus":
        protocol["indication"] = {"system": "icd-10-cm", "code": draw(st.sampled_from(STATUS_MIGRAINOSUS_INDICATIONS))}
    elif draw(st.booleans()):
        protocol["indication"] = {"system": "icd-10-cm", "code": draw(st.sampled_from(INDICATIONS))}
    bags = [f["minutes"] for f in facts.values() if "minutes" in f]
    if draw(st.booleans()):
        # No longer than the shortest bag, nor than the 7 min a duration override below asks for.
        shortest = min([*bags, Decimal(7)])
        cents = draw(st.integers(1, int(shortest * 100)))
        protocol["min_duration"] = canonical(Decimal(cents) / 100, "min")
    if draw(st.booleans()):
        protocol["applies_to"] = {"min_age": "18 a"}
    if draw(st.booleans()):
        protocol["status"] = "active"  # the default written out; draft and retired ones cannot be ordered
    if draw(st.booleans()):
        protocol["priority"] = draw(st.sampled_from(PRIORITIES))

    order: dict[str, Any] = {
        "order_id": draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9.\-_]{0,20}\Z")),
        "protocol": protocol["id"],
        "patient": draw(st.one_of(
            st.builds(lambda i: {"reference": f"Patient/{i}"}, st.from_regex(r"\A[A-Za-z0-9\-.]{1,20}\Z")),
            st.builds(lambda v: {"identifier": {"system": "urn:oid:1.2.3", "value": v}}, st.from_regex(r"\A[A-Z0-9]{1,12}\Z")),
        )),
        "requester": {"reference": "Practitioner/9"},
        "start": draw(instants()),
        "authored": draw(instants()),
    }
    expected: dict[str, Any] = {k: order[k] for k in ("order_id", "protocol", "patient", "requester", "start", "authored")}
    # unmap reads the version from instantiatesCanonical, whether or not the order named it
    expected["protocol_version"] = protocol["version"]
    if draw(st.booleans()):
        order["protocol_version"] = protocol["version"]
    if draw(st.booleans()):
        order["encounter"] = expected["encounter"] = {"reference": draw(st.from_regex(r"\AEncounter/[A-Za-z0-9\-.]{1,20}\Z"))}
    if draw(st.booleans()):
        order["category"] = expected["category"] = draw(st.sampled_from(["inpatient", "outpatient", "community"]))
    if draw(st.booleans()):
        order["priority"] = draw(st.sampled_from(PRIORITIES))
        if order["priority"] != protocol.get("priority"):  # the protocol's default is left out by unmap
            expected["priority"] = order["priority"]
    weight_kg: Decimal | None = None
    if any(f.get("per_kg") for f in facts.values()) or draw(st.booleans()):
        raw, text, weight_kg = draw(quantity("kg", 3, 190))
        record: dict[str, Any] = {}
        if draw(st.booleans()):
            record["measured_at"] = draw(instants())
        if draw(st.booleans()):
            record["source"] = draw(st.sampled_from(["measured", "stated"]))
        if record or draw(st.booleans()):
            order["weight"] = {"quantity": raw, **record}
        else:
            order["weight"] = raw
        expected["weight"] = {"quantity": text, **record} if record else text
    if "applies_to" in protocol or draw(st.booleans()):
        order["age"] = expected["age"] = f"{draw(st.integers(18, 110))} a"
    overrides, expected_overrides = {}, {}
    for step in steps:
        fact = facts[step["id"]]
        if not draw(st.booleans()):
            continue
        if step["type"] != "infusion":
            new = fact["value"] / 2 if fact["value"] >= Decimal("0.02") else fact["value"]
            unit = "mg/kg" if fact["per_kg"] else "mg"
            overrides[step["id"]] = {"dose": canonical(new, unit)}
            if canonical(new, unit) != fact["dose"]:
                expected_overrides[step["id"]] = {"dose": canonical(new, unit)}
        elif "duration" in fact:
            overrides[step["id"]] = {"duration": "7 min"}
            if fact["duration"] != "7 min":
                expected_overrides[step["id"]] = {"duration": "7 min"}
    if overrides:
        order["overrides"] = overrides
    if expected_overrides:
        expected["overrides"] = expected_overrides
    return protocol, order, expected
