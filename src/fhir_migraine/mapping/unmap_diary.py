"""Diary Observations, MedicationStatements and QuestionnaireResponses (a Bundle or a searchset, in
any order) -> diary entries: the reverse of diary.py. Other resources are ignored, and so are the
score Observations (derived from the answers, which are read from the QuestionnaireResponses).
A medication taken is read from its MedicationStatement and its outcome Observation, or from the
Observation ``diary-medication-taken`` that earlier versions wrote under the same identifier."""

from __future__ import annotations

from typing import Any

from fhir_migraine import terminology
from fhir_migraine.errors import InputError
from fhir_migraine.identifiers import DIARY_SYSTEM, DiaryPart, parse_diary_value
from fhir_migraine.inputs.diary import HIT6_KEYS, MIDAS_KEYS, OUTCOMES
from fhir_migraine.mapping.diary import ATTACK_LISTS, OUTCOME_VALUES, QUESTIONNAIRES
from fhir_migraine.mapping.fhir import Resource, first_identifier
from fhir_migraine.mapping.reader import Reader

DIARY_TYPES = ("Observation", "MedicationStatement", "QuestionnaireResponse")
#: Parts of an entry unmap leaves out: made again from the answers.
DERIVED_PARTS = ("midas-score", "hit6-score")


def entries_from_bundle(bundle: Resource, problems: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every diary entry in the Bundle, in the order its day Observation appears.

    With ``problems``, an entry that cannot be read back is reported there (its id and why)
    instead of failing the whole Bundle.
    """
    parts: dict[str, dict[tuple[DiaryPart, int | None], Reader]] = {}
    for entry in (Reader(bundle).opt("entry") or Reader([], "$.entry")).items():
        resource = entry.opt("resource")
        if resource is None or not isinstance(resource.value, dict) or resource.value.get("resourceType") not in DIARY_TYPES:
            continue
        key = first_identifier(resource.value, DIARY_SYSTEM)
        if key is None:
            continue
        parsed = parse_diary_value(key)
        if parsed is None:
            if problems is None:
                raise resource.fail(f"identifier {key!r} is not one this project gives", ".identifier")
            problems.append({"entry_id": key, "problem": "its identifier is not one this project gives"})
            continue
        if parsed.part in DERIVED_PARTS:
            continue
        parts.setdefault(parsed.entry_id, {})[(parsed.part, parsed.index)] = resource
    entries = []
    for entry_id, found in parts.items():
        if ("day", None) not in found:
            if problems is not None:
                problems.append({"entry_id": entry_id, "problem": "its diary-day Observation is missing"})
            continue
        try:
            entries.append(_entry(entry_id, found))
        except InputError as exc:
            if problems is None:
                raise
            problems.append({"entry_id": entry_id, "problem": "; ".join(str(p) for p in exc.problems)})
    return entries


def _entry(entry_id: str, found: dict[tuple[DiaryPart, int | None], Reader]) -> dict[str, Any]:
    day = found[("day", None)]
    entry: dict[str, Any] = {
        "entry_id": entry_id,
        "patient": day.get("subject").patient(),
        "date": day.get("effectiveDateTime").str(),
    }
    if day.opt("valueBoolean") is not None:
        had_headache = day.get("valueBoolean").bool()
        if not had_headache:
            entry["headache"] = None
        elif ("attack", None) in found:
            entry["headache"] = _attack(found[("attack", None)])
        else:
            raise day.fail("says a headache occurred but the Bundle has no attack Observation", ".valueBoolean")
    medications: list[tuple[int, Reader]] = []
    hydration: list[tuple[int, Reader]] = []
    for (part, index), resource in found.items():
        if index is not None and part in ("medication", "hydration"):
            (medications if part == "medication" else hydration).append((index, resource))
    if medications:
        entry["medications"] = [_medication(r, found.get(("medication-outcome", i))) for i, r in sorted(medications, key=lambda p: p[0])]
    if hydration:
        entry["hydration"] = [_drink(r) for _, r in sorted(hydration, key=lambda p: p[0])]
    if ("infusion", None) in found:
        entry["infusion"] = _infusion(found[("infusion", None)])
    if ("menstruation", None) in found:
        entry["menstruation"] = found[("menstruation", None)].get("valueBoolean").bool()
    if ("midas", None) in found:
        entry["midas"] = _answers(found[("midas", None)], "midas", MIDAS_KEYS)
    if ("hit6", None) in found:
        entry["hit6"] = _answers(found[("hit6", None)], "hit6", HIT6_KEYS)
    note = day.opt("note")
    if note is not None:
        entry["notes"] = note.get(0).get("text").str()
    return entry


def _kind(component: Reader, kinds: dict[tuple[str, str], str]) -> str | None:
    for coding in component.get("code").get("coding").items():
        found = kinds.get((coding.get("system").str(), coding.get("code").str()))
        if found:
            return found
    return None


def _component_kinds() -> dict[tuple[str, str], str]:
    table = terminology.diary_codes()["observation_codes"]
    return {(v["system"], v["code"]): k for k, v in table.items()}


def _value(kind: str, component: Reader) -> str:
    coding = component.get("valueCodeableConcept").get("coding").get(0)
    system, code = coding.get("system").str(), coding.get("code").str()
    value = terminology.diary_value(kind, system, code)
    if value is None:
        raise coding.fail(f"{system}|{code} is not a known {kind} code")
    return value


def _attack(observation: Reader) -> dict[str, Any]:
    period = observation.get("effectivePeriod")
    attack: dict[str, Any] = {"start": period.get("start").str()}
    if period.opt("end") is not None:
        attack["end"] = period.get("end").str()
    lists: dict[str, list[str]] = {}
    by_kind = {kind: field for field, kind in ATTACK_LISTS}
    kinds = _component_kinds()
    for component in (observation.opt("component") or Reader([], "")).items():
        kind = _kind(component, kinds)
        if kind == "peak_intensity":
            attack["peak_intensity"] = component.get("valueInteger").int()
        elif kind in ("location", "quality"):
            attack[kind] = _value(kind, component)
        elif kind == "worse_with_activity":
            attack[kind] = component.get("valueBoolean").bool()
        elif kind == "disability":
            attack[kind] = int(_value("disability", component))
        elif kind in by_kind:
            lists.setdefault(by_kind[kind], []).append(_value(by_kind[kind], component))
    ordered = ("peak_intensity", "location", "quality", "worse_with_activity")
    result = {"start": attack["start"], **({"end": attack["end"]} if "end" in attack else {})}
    result.update({k: attack[k] for k in ordered if k in attack})
    result.update({field: lists[field] for field, _ in ATTACK_LISTS if field in lists})
    if "disability" in attack:
        result["disability"] = attack["disability"]
    return result


def _medication(resource: Reader, outcome: Reader | None) -> dict[str, Any]:
    """A medication taken: from its MedicationStatement (and outcome), or a legacy Observation."""
    if resource.get("resourceType").str() == "Observation":
        return _medication_taken(resource)
    medication = _drug(resource.get("medicationCodeableConcept"))
    dosage = resource.get("dosage").get(0)
    medication["dose"] = dosage.get("doseAndRate").get(0).get("doseQuantity").quantity_text()
    route = dosage.opt("route")
    if route is not None:
        medication["route"] = _route(route)
    medication["taken_at"] = resource.get("effectiveDateTime").str()
    if outcome is not None:
        medication.update(_outcomes(outcome))
    return medication


def _drug(concept: Reader) -> dict[str, Any]:
    """The drug as written, and its code when the entry gave its own (not the table's)."""
    drug = concept.get("text").str()
    medication: dict[str, Any] = {"drug": drug}
    coding = concept.get("coding").get(0)
    system, code = coding.get("system").str(), coding.get("code").str()
    table = terminology.drug(drug)
    if table is None or (table.system, table.code) != (system, code):
        # The entry gave its own code for a drug the table lacks (or codes differently).
        own = {"system": terminology.short_system(system), "code": code}
        display = coding.opt("display")
        if display is not None and display.str() != drug:
            own["display"] = display.str()
        medication["code"] = own
    return medication


def _route(concept: Reader) -> str:
    coding = concept.get("coding").get(0)
    system, code = coding.get("system").str(), coding.get("code").str()
    value = terminology.diary_value("route", system, code)
    if value is None:
        raise coding.fail(f"{system}|{code} is not a known route code")
    return value


def _outcomes(observation: Reader) -> dict[str, Any]:
    """The outcomes at 2 hours a medication's outcome Observation records, in input order."""
    kinds = _component_kinds()
    found: dict[str, Any] = {}
    for component in (observation.opt("component") or Reader([], "")).items():
        kind = _kind(component, kinds)
        if kind not in OUTCOME_VALUES:
            continue
        if OUTCOME_VALUES[kind] == "valueBoolean":
            found[kind] = component.get("valueBoolean").bool()
        else:
            found[kind] = _value(kind, component)
    return {name: found[name] for name in OUTCOMES if name in found}


def _medication_taken(observation: Reader) -> dict[str, Any]:
    """A medication as the Observation ``diary-medication-taken`` of earlier versions holds it."""
    medication = _drug(observation.get("valueCodeableConcept"))
    kinds = _component_kinds()
    fields: dict[str, Any] = {}
    for component in (observation.opt("component") or Reader([], "")).items():
        kind = _kind(component, kinds)
        if kind == "dose":
            fields["dose"] = component.get("valueQuantity").quantity_text()
        elif kind == "route":
            fields["route"] = _value("route", component)
        elif kind == "relief_2h":
            fields["relief_2h"] = component.get("valueBoolean").bool()
    if "dose" not in fields:
        raise observation.fail("has no dose component", ".component")
    medication["dose"] = fields["dose"]
    if "route" in fields:
        medication["route"] = fields["route"]
    medication["taken_at"] = observation.get("effectiveDateTime").str()
    if "relief_2h" in fields:
        medication["relief_2h"] = fields["relief_2h"]
    return medication


def _drink(observation: Reader) -> dict[str, Any]:
    product = None
    kinds = _component_kinds()
    for component in (observation.opt("component") or Reader([], "")).items():
        if _kind(component, kinds) == "product":
            product = component.get("valueString").str()
    if product is None:
        raise observation.fail("has no product component", ".component")
    return {
        "product": product,
        "volume": observation.get("valueQuantity").quantity_text(),
        "taken_at": observation.get("effectiveDateTime").str(),
    }


def _infusion(observation: Reader) -> dict[str, Any]:
    infusion: dict[str, Any] = {"received_at": observation.get("effectiveDateTime").str()}
    kinds = _component_kinds()
    for component in (observation.opt("component") or Reader([], "")).items():
        if _kind(component, kinds) == "protocol":
            infusion["protocol"] = component.get("valueString").str()
    return infusion


def _answers(response: Reader, name: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The answers of a QuestionnaireResponse, by linkId, as the entry gave them."""
    if response.get("questionnaire").str() != QUESTIONNAIRES[name]:
        raise response.fail(f"answers {response.get('questionnaire').str()!r}, not {QUESTIONNAIRES[name]!r}", ".questionnaire")
    answers: dict[str, Any] = {}
    for item in response.get("item").items():
        answer = item.get("answer").get(0)
        answers[item.get("linkId").str()] = answer.get("valueInteger").int() if name == "midas" else answer.get("valueString").str()
    if sorted(answers) != sorted(keys):
        raise response.fail(f"has the items {sorted(answers)}, not {list(keys)}", ".item")
    return {key: answers[key] for key in keys}
