"""Resource.text: a narrative a clinician can read in any EHR, built only from the resource's own
structured data (never from the input it was mapped from), every value escaped.

Narrative rules: https://hl7.org/fhir/R4/narrative.html (status ``generated``: "the contents of
the narrative are entirely generated from the core elements in the content").
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from fhir_migraine.mapping.fhir import DOSE_CEILING_EXT, EXTENSION_BASE, MIN_SESSION_EXT, Resource

XHTML = "http://www.w3.org/1999/xhtml"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PEAK_PAIN = "72514-3"  # LOINC: pain severity 0-10, reported (the attack's peak intensity)
# Diary component codes (CodeSystem migraine-diary) read as a short label, and whether several
# components of one code are listed together. None: the value's display alone says it.
_COMPONENT_LABELS: dict[str, str | None] = {
    "headache-location": None,
    "headache-quality": None,
    "associated-symptom": "symptoms",
    "aura-type": "aura",
    "attack-trigger": "suspected triggers",
    "headache-disability": "disability",
}
# Elements that come before ``text`` in FHIR's element order (Resource, then DomainResource).
_BEFORE_TEXT = ("resourceType", "id", "meta", "implicitRules", "language")


# -- the parts: dates, quantities, codes ------------------------------------------------------------

def when(value: Any) -> str:
    """A FHIR date or dateTime as a clinician reads it: ``25 Oct 2026 21:40 −04:00``, ``25 Oct 2026``;
    the offset as written in the data (``Z`` is ``UTC``). Anything else is shown as it is."""
    moment = _parse(value)
    if isinstance(moment, datetime):
        return f"{_day(moment)} {_clock(moment)} {_offset(value)}"
    if isinstance(moment, date):
        return _day(moment)
    return str(value)


def period_text(start: Any, end: Any) -> str:
    """``20 Oct 2026 06:30 – 14:00 −04:00 (7 h 30 min)``: the end's date only when it is another
    day, one offset when both have the same, and the length between the two instants."""
    first, last = _parse(start), _parse(end)
    if not (isinstance(first, datetime) and isinstance(last, datetime)):
        return f"{when(start)} – {when(end)}"
    same_offset = _offset(start) == _offset(end)
    head = f"{_day(first)} {_clock(first)}" + ("" if same_offset else f" {_offset(start)}")
    tail = _clock(last) if last.date() == first.date() else f"{_day(last)} {_clock(last)}"
    text = f"{head} – {tail} {_offset(end)}"
    minutes = int((last - first).total_seconds() // 60)
    if minutes >= 0:
        text += f" ({_length(minutes)})"
    return text


def _parse(value: Any) -> datetime | date | None:
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        if "T" in value and len(value) > 16:
            return datetime.fromisoformat(value)
    except ValueError:
        return None
    return None


def _day(moment: date) -> str:
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def _clock(moment: datetime) -> str:
    return f"{moment:%H:%M}" + (f":{moment:%S}" if moment.second else "")


def _offset(value: str) -> str:
    """The UTC offset as written (``−04:00`` with a minus sign, ``UTC`` for ``Z``)."""
    if value.endswith("Z"):
        return "UTC"
    sign_at = max(value.rfind("+"), value.rfind("-"))
    if sign_at <= 10:
        return ""
    sign = "−" if value[sign_at] == "-" else "+"
    return sign + value[sign_at + 1:]


def _length(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" + (f" {rest} min" if rest else "")


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def quantity(value: Any) -> str:
    """``72 kg``: the value and the unit as written (its code when there is no unit)."""
    if not isinstance(value, dict):
        return ""
    unit = value.get("unit") or value.get("code") or ""
    return f"{_number(value.get('value', ''))} {unit}".strip()


def concept_text(value: Any) -> str:
    """A CodeableConcept's text, else its first coding's display, else its first code."""
    if not isinstance(value, dict):
        return ""
    if value.get("text"):
        return str(value["text"])
    for coding in value.get("coding", []):
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return ""


def _extension(element: Any, url: str) -> str:
    """The quantity an extension of ``element`` holds, as text ("" when it has none)."""
    for extension in element.get("extension", []) if isinstance(element, dict) else []:
        if extension.get("url") == url:
            return quantity(extension.get("valueQuantity") or extension.get("valueDuration"))
    return ""


def _code(value: Any) -> str | None:
    codings = value.get("coding", []) if isinstance(value, dict) else []
    return codings[0].get("code") if codings else None


def _yes_no(value: Any) -> str:
    return "yes" if value is True else "no"


# -- the div ---------------------------------------------------------------------------------------

def div(*blocks: str) -> str:
    """The narrative's div, from blocks already written as XHTML (see ``p`` and ``ordered``)."""
    return f'<div xmlns="{XHTML}">{"".join(blocks)}</div>'


def p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def ordered(items: list[str]) -> str:
    return "<ol>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ol>" if items else ""


def generated(*blocks: str) -> dict[str, str]:
    return {"status": "generated", "div": div(*blocks)}


def with_text(resource: Resource) -> Resource:
    """The resource with its narrative, placed as FHIR orders elements: after id and meta."""
    text = narrative(resource)
    head = {k: resource[k] for k in _BEFORE_TEXT if k in resource}
    return {**head, "text": text, **{k: v for k, v in resource.items() if k not in head and k != "text"}}


def narrative(resource: Resource) -> dict[str, str]:
    """The Narrative of one resource the project writes."""
    kind = resource.get("resourceType")
    if kind == "Observation":
        build = _OBSERVATIONS.get(_profile(resource), _observation)
        return generated(*build(resource))
    return generated(*_RESOURCES[str(kind)](resource))


def _profile(resource: Resource) -> str:
    profiles = resource.get("meta", {}).get("profile", [])
    return profiles[0].removeprefix(EXTENSION_BASE + "/") if profiles else ""


# -- diary Observations ----------------------------------------------------------------------------

def _diary_day(day: Resource) -> list[str]:
    said = f"Headache diary, {when(day.get('effectiveDateTime'))}: "
    if "valueBoolean" in day:
        said += "headache day" if day["valueBoolean"] else "headache-free"
    else:
        said += "not recorded"
    recorded = _components(day).get("headache-as-recorded")
    if recorded is not None:
        own = "not recorded" if "valueBoolean" not in recorded else "headache" if recorded["valueBoolean"] else "headache-free"
        said += f" (an attack recorded on another day runs into it; the patient recorded the day as {own})"
    blocks = [p(said)]
    blocks += [p(f"Note: {note['text']}") for note in day.get("note", []) if note.get("text")]
    return blocks


def _attack(attack: Resource) -> list[str]:
    period = attack.get("effectivePeriod", {})
    if "end" in period:
        said = f"Headache attack {period_text(period.get('start'), period['end'])}"
    else:
        said = f"Headache attack from {when(period.get('start'))}, no end recorded"
    parts: list[str] = []
    grouped: dict[str, list[str]] = {}
    for component in attack.get("component", []):
        code = _code(component.get("code"))
        if code == PEAK_PAIN:
            parts.append(f"peak {_number(component.get('valueInteger'))}/10")
        elif "valueBoolean" in component:
            parts.append(f"{concept_text(component.get('code'))}: {_yes_no(component['valueBoolean'])}")
        elif code in _COMPONENT_LABELS and _COMPONENT_LABELS[code] is not None:
            label = str(_COMPONENT_LABELS[code])
            if label not in grouped:
                grouped[label] = []
                parts.append(label)  # a place kept for the group, filled below
            grouped[label].append(concept_text(component.get("valueCodeableConcept")))
        else:
            parts.append(concept_text(component.get("valueCodeableConcept")))
    parts = [f"{part}: {', '.join(grouped[part])}" if part in grouped else part for part in parts]
    if attack.get("status") == "preliminary":
        parts.append("ongoing when recorded")
    return [p(f"{said}: {'; '.join(parts)}" if parts else said)]


def _components(observation: Resource) -> dict[str, dict[str, Any]]:
    return {str(_code(c.get("code"))): c for c in observation.get("component", [])}


def _medication_statement(statement: Resource) -> list[str]:
    """``Medication taken (patient-reported): sumatriptan 50 mg, Oral route, 20 Oct 2026 07:00 −04:00``."""
    said = concept_text(statement.get("medicationCodeableConcept"))
    for dosage in statement.get("dosage", [])[:1]:
        for dose in dosage.get("doseAndRate", [])[:1]:
            said += f" {quantity(dose.get('doseQuantity'))}"
        if dosage.get("route"):
            said += f", {concept_text(dosage['route'])}"
    said += f", {when(statement.get('effectiveDateTime'))}"
    if statement.get("reasonReference"):
        said += ", for the headache attack"
    return [p(f"Medication taken ({statement.get('status')}, patient-reported): {said}")]


# The outcome components (CodeSystem migraine-diary) as a short label.
_OUTCOME_LABELS = {
    "relief-2h": "relief",
    "pain-2h": "pain",
    "pain-free-2h": "pain-free",
    "mbs-free-2h": "free of the most bothersome symptom",
    "rescue-medication": "rescue medication taken",
    "recurrence-48h": "recurrence within 48 h",
}


def _medication_outcome(outcome: Resource) -> list[str]:
    """``Outcome at 2 h of a medication taken, 20 Oct 2026 09:00 −04:00: relief: yes; pain: Mild pain``."""
    parts = []
    for component in outcome.get("component", []):
        code = str(_code(component.get("code")))
        label = _OUTCOME_LABELS.get(code, concept_text(component.get("code")))
        shown = _yes_no(component["valueBoolean"]) if "valueBoolean" in component \
            else concept_text(component.get("valueCodeableConcept"))
        parts.append(f"{label}: {shown}")
    said = f"Outcome at 2 h of a medication taken, {when(outcome.get('effectiveDateTime'))}"
    return [p(f"{said}: {'; '.join(parts)}" if parts else said)]


def _oral_intake(drink: Resource) -> list[str]:
    product = _components(drink).get("hydration-product", {}).get("valueString")
    said = f"{concept_text(drink.get('code'))}: {quantity(drink.get('valueQuantity'))}"
    if product:
        said += f" of {product}"
    return [p(f"{said}, {when(drink.get('effectiveDateTime'))}")]


def _infusion_received(infusion: Resource) -> list[str]:
    said = f"{concept_text(infusion.get('code'))} {when(infusion.get('effectiveDateTime'))}"
    protocol = _components(infusion).get("infusion-protocol", {}).get("valueString")
    if protocol:
        said += f" (protocol {protocol})"
    return [p(said)]


def _menstruation(day: Resource) -> list[str]:
    said = "Menstruating" if day.get("valueBoolean") else "Not menstruating"
    return [p(f"{said}, {when(day.get('effectiveDateTime'))}")]


def _score(score: Resource) -> list[str]:
    """A questionnaire score (MIDAS, HIT-6): the total and its grade or impact band."""
    said = f"{concept_text(score.get('code'))}, {when(score.get('effectiveDateTime'))}: {_number(score.get('valueInteger'))}"
    bands = [concept_text(c.get("valueCodeableConcept")) for c in score.get("component", []) if "valueCodeableConcept" in c]
    return [p("; ".join([said, *bands]))]


def _questionnaire_response(response: Resource) -> list[str]:
    """The answers, one per item, as given (the questionnaire named by its canonical URL)."""
    name = str(response.get("questionnaire", "")).rsplit("/", 1)[-1]
    said = f"Answers to the questionnaire {name}, {when(response.get('authored'))} ({response.get('status')})"
    answers = []
    for item in response.get("item", []):
        given = [str(next(iter(a.values()), "")) for a in item.get("answer", []) if isinstance(a, dict)]
        answers.append(f"{item.get('linkId')}: {', '.join(given)}")
    return [p(said), ordered(answers)]


def _weight(weight: Resource) -> list[str]:
    codings = weight.get("code", {}).get("coding", [])
    said = f"{concept_text(weight.get('code'))} {quantity(weight.get('valueQuantity'))}"
    how = [c["display"] for c in codings[1:] if c.get("display")]
    if how:
        said += f" ({', '.join(how)})"
    if weight.get("effectiveDateTime"):
        said += f", {when(weight['effectiveDateTime'])}"
    order = next((i.get("value") for i in weight.get("identifier", []) if i.get("value")), None)
    if order:
        said += f"; charted for order {order}"
    return [p(said)]


def _observation(observation: Resource) -> list[str]:
    """Any other Observation (the age an order was checked against): code, value, time."""
    said = f"{concept_text(observation.get('code'))} {quantity(observation.get('valueQuantity'))}".strip()
    if observation.get("effectiveDateTime"):
        said += f", {when(observation['effectiveDateTime'])}"
    return [p(said)]


def _summary(summary: Resource) -> list[str]:
    """The diary summary: its period, then each figure as its component says it."""
    period = summary.get("effectivePeriod", {})
    head = f"Headache diary summary, {period_text(period.get('start'), period.get('end'))}"
    figures = []
    for component in summary.get("component", []):
        if "valueBoolean" in component:
            shown = _yes_no(component["valueBoolean"])
        elif "valueQuantity" in component:
            shown = quantity(component["valueQuantity"])
        else:
            shown = _number(component.get("valueInteger"))
        figures.append(f"{concept_text(component.get('code'))}: {shown}")
    notes = [p(str(n.get("text", ""))) for n in summary.get("note", []) if n.get("text")]
    return [p(head), p("; ".join(figures)), *notes]


_OBSERVATIONS: dict[str, Callable[[Resource], list[str]]] = {
    "diary-summary": _summary,
    "diary-midas-score": _score,
    "diary-hit6-score": _score,
    "diary-day": _diary_day,
    "diary-attack": _attack,
    "diary-medication-outcome": _medication_outcome,
    "diary-oral-intake": _oral_intake,
    "diary-infusion-received": _infusion_received,
    "diary-menstruation": _menstruation,
    "migraine-order-weight": _weight,
}


# -- orders and protocols --------------------------------------------------------------------------

def _protocol(canonical: Any) -> str:
    """``ed-migraine-rescue version 1.0`` from ``…/PlanDefinition/ed-migraine-rescue|1.0``."""
    url, _, version = str(canonical).partition("|")
    name = url.rsplit("/", 1)[-1]
    return f"{name} version {version}" if version else name


def _timing(dosage: dict[str, Any]) -> str:
    """When a Dosage is given, from its Timing.repeat: first time, how often, how many times."""
    repeat = dosage.get("timing", {}).get("repeat", {})
    parts = []
    start = repeat.get("boundsPeriod", {}).get("start")
    if start:
        parts.append(f"from {when(start)}")
    if "period" in repeat:
        parts.append(f"every {_number(repeat['period'])} {repeat.get('periodUnit', '')}".strip())
    count = repeat.get("count")
    if count is not None:
        parts.append("once" if count == 1 else f"{count} times")
    return ", ".join(parts)


def _request(request: Resource) -> list[str]:
    head = f"Medication request ({request.get('status')}, {request.get('intent')})"
    if request.get("priority"):
        head += f", priority {request['priority']}"
    if request.get("authoredOn"):
        head += f", written {when(request['authoredOn'])}"
    blocks = [p(head)]
    dosages = []
    for dosage in request.get("dosageInstruction", []):
        timing = _timing(dosage)
        dosages.append(f"{dosage.get('text', '')}" + (f" ({timing})" if timing else ""))
    blocks.append(ordered(dosages))
    reasons = [concept_text(r) for r in request.get("reasonCode", [])]
    facts = [f"Reason: {', '.join(reasons)}"] if reasons else []
    for resource in request.get("contained", []):
        if resource.get("resourceType") == "Observation" and "valueQuantity" in resource:
            facts.append(f"{concept_text(resource.get('code'))}: {quantity(resource['valueQuantity'])}")
    for canonical in request.get("instantiatesCanonical", []):
        facts.append(f"Protocol: {_protocol(canonical)}")
    blocks += [p(fact) for fact in facts]
    blocks += [p(f"Note: {note['text']}") for note in request.get("note", []) if note.get("text")]
    return blocks


def _bag(bag: Resource) -> list[str]:
    said = concept_text(bag.get("code"))
    items = []
    for ingredient in bag.get("ingredient", []):
        item = concept_text(ingredient.get("itemCodeableConcept"))
        strength = ingredient.get("strength", {})
        if strength:
            item += f" {quantity(strength.get('numerator'))} in {quantity(strength.get('denominator'))}"
        ceiling = _extension(ingredient, DOSE_CEILING_EXT)
        if ceiling:
            item += f" (overrides up to {ceiling})"
        items.append(item + ("" if ingredient.get("isActive", True) else " (base fluid)"))
    return [p(said), ordered(items)]


def _group(group: Resource) -> list[str]:
    protocols = ", ".join(_protocol(c) for c in group.get("instantiatesCanonical", []))
    head = f"Order set{' from protocol ' + protocols if protocols else ''} ({group.get('status')}, {group.get('intent')})"
    if group.get("authoredOn"):
        head += f", written {when(group['authoredOn'])}"
    if _extension(group, MIN_SESSION_EXT):
        head += f"; session at least {_extension(group, MIN_SESSION_EXT)}"
    steps = [f"{a.get('title', a.get('id', ''))}: {a.get('textEquivalent', '')}" for a in group.get("action", [])]
    return [p(head), ordered(steps)]


def _detected_issue(issue: Resource) -> list[str]:
    head = f"{concept_text(issue.get('code'))} (severity {issue.get('severity')}, {issue.get('status')})"
    blocks = [p(head), p(str(issue.get("detail", "")))]
    for mitigation in issue.get("mitigation", []):
        said = f"Mitigation: {concept_text(mitigation.get('action'))}"
        author = mitigation.get("author", {}).get("display")
        if author:
            said += f", by {author}"
        if mitigation.get("date"):
            said += f", {when(mitigation['date'])}"
        blocks.append(p(said))
    return blocks


def _plan(plan: Resource) -> list[str]:
    head = f"Protocol {plan.get('title') or plan.get('name')}, version {plan.get('version')} ({plan.get('status')})"
    focus = [concept_text(u.get("valueCodeableConcept")) for u in plan.get("useContext", [])]
    if focus:
        head += f": {', '.join(focus)}"
    if _extension(plan, MIN_SESSION_EXT):
        head += f"; session at least {_extension(plan, MIN_SESSION_EXT)}"
    blocks = [p(head)]
    steps = [f"{a.get('title', a.get('id', ''))}: {a.get('textEquivalent', '')}" for a in plan.get("action", [])]
    return [*blocks, ordered(steps)]


def _activity(activity: Resource) -> list[str]:
    product = concept_text(activity.get("productCodeableConcept"))
    if not product:
        product = str(activity.get("productReference", {}).get("reference", "")).lstrip("#")
    blocks = [p(f"Step of a protocol: {activity.get('kind')} of {product} ({activity.get('status')})")]
    dosages = []
    for dosage in activity.get("dosage", []):
        ceiling = _extension(dosage, DOSE_CEILING_EXT)
        dosages.append(str(dosage.get("text", "")) + (f" (overrides up to {ceiling})" if ceiling else ""))
    return [*blocks, ordered(dosages)]


def _document(document: Resource) -> list[str]:
    period = document.get("context", {}).get("period", {})
    head = f"{document.get('description') or concept_text(document.get('type'))}"
    if period:
        head += f", {period_text(period.get('start'), period.get('end'))}"
    head += f" ({document.get('status')}); made {when(document.get('date'))}"
    authors = [a.get("display") or a.get("reference") for a in document.get("author", [])]
    if authors:
        head += f" by {', '.join(str(a) for a in authors)}"
    blocks = [p(head)]
    kinds = [str(c.get("attachment", {}).get("contentType")) for c in document.get("content", [])]
    blocks.append(p(f"Attached: {', '.join(kinds)}"))
    for related in document.get("relatesTo", []):
        blocks.append(p(f"{related.get('code', '').capitalize()} {related.get('target', {}).get('reference', '')}"))
    return blocks


def _device(device: Resource) -> list[str]:
    names = [n.get("name") for n in device.get("deviceName", [])]
    versions = [v.get("value") for v in device.get("version", [])]
    return [p(f"Software {', '.join(str(n) for n in names)}" + (f", version {', '.join(str(v) for v in versions)}" if versions else ""))]


_RESOURCES: dict[str, Callable[[Resource], list[str]]] = {
    "DocumentReference": _document,
    "Device": _device,
    "MedicationRequest": _request,
    "MedicationStatement": _medication_statement,
    "Medication": _bag,
    "RequestGroup": _group,
    "DetectedIssue": _detected_issue,
    "QuestionnaireResponse": _questionnaire_response,
    "PlanDefinition": _plan,
    "ActivityDefinition": _activity,
}
