"""Diary entry -> patient-reported Observations (category ``survey``, performer the patient) and
MedicationStatements.

Per entry: a diary-day Observation (was there a headache: true, false for a headache-free day,
or absent when not recorded; the notes; ``hasMember`` the day's other Observations and answers),
the attack with its components, per medication taken a MedicationStatement and, when the patient
recorded how it worked, its outcome at 2 hours (an Observation ``partOf`` the statement), one per
drink, one for an infusion received, one saying whether the patient was menstruating that day
(when recorded), and for MIDAS and HIT-6 answers a QuestionnaireResponse and the score
Observation derived from it.
Spec: https://hl7.org/fhir/R4/observation.html, https://hl7.org/fhir/R4/medicationstatement.html,
https://hl7.org/fhir/R4/questionnaireresponse.html
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from fhir_migraine import terminology
from fhir_migraine.clinical import scores
from fhir_migraine.identifiers import DIARY_SYSTEM, DiaryPart, diary_value
from fhir_migraine.inputs.diary import (
    HIT6_KEYS,
    MIDAS_KEYS,
    NOT_RECORDED,
    Attack,
    DiaryEntry,
    Drink,
    InfusionReceived,
    MedicationTaken,
)
from fhir_migraine.inputs.orders import parse_instant
from fhir_migraine.mapping.fhir import Resource, concept, full_url, identifier, identifiers, profile, subject, transaction
from fhir_migraine.mapping.narrative import with_text

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
#: The types R4 allows as Observation.hasMember targets (of those the diary writes).
HAS_MEMBER_TYPES = ("Observation", "QuestionnaireResponse")
#: The outcome fields of a medication taken, by component kind, with their FHIR value type.
OUTCOME_VALUES = {"relief_2h": "valueBoolean", "pain_2h": "valueCodeableConcept", "pain_free_2h": "valueBoolean",
                  "mbs_free_2h": "valueBoolean", "rescue": "valueBoolean", "recurrence_48h": "valueBoolean"}
OUTCOME_DELAY = timedelta(hours=2)
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
ATTACK_LISTS = (("symptoms", "symptom"), ("aura", "aura"), ("triggers", "trigger"))
QUESTIONNAIRE_BASE = f"{terminology.CANONICAL_BASE}/Questionnaire"
#: The canonical URL of each questionnaire of the diary (shipped in the FHIR package).
QUESTIONNAIRES = {"midas": f"{QUESTIONNAIRE_BASE}/midas", "hit6": f"{QUESTIONNAIRE_BASE}/hit-6"}


def to_fhir_bundle(entries: list[DiaryEntry]) -> Resource:
    return transaction([r for entry in entries for r in to_fhir_observations(entry)])


def to_fhir_observations(entry: DiaryEntry) -> list[Resource]:
    """The day Observation first, then the attack, medications (each statement followed by its
    outcome), drinks and infusion."""
    members: list[Resource] = []
    if isinstance(entry.headache, Attack):
        members.append(to_fhir_attack(entry, entry.headache))
    for i, taken in enumerate(entry.medications):
        statement = to_fhir_medication_statement(entry, i, taken)
        members.append(statement)
        if taken.outcomes():
            members.append(to_fhir_medication_outcome(entry, i, taken, statement))
    members += [to_fhir_oral_intake(entry, i, d) for i, d in enumerate(entry.hydration)]
    if entry.infusion is not None:
        members.append(to_fhir_infusion_received(entry, entry.infusion))
    if entry.menstruation is not None:
        members.append(to_fhir_menstruation(entry, entry.menstruation))
    if entry.midas is not None:
        answers = to_fhir_questionnaire_response(entry, "midas", entry.midas)
        members += [answers, to_fhir_midas_score(entry, entry.midas, answers)]
    if entry.hit6 is not None:
        answers = to_fhir_questionnaire_response(entry, "hit6", entry.hit6)
        members += [answers, to_fhir_hit6_score(entry, entry.hit6, answers)]
    return [to_fhir_diary_day(entry, members), *members]


PROFILES = {
    "diary_day": "diary-day",
    "attack": "diary-attack",
    "medication_statement": "diary-medication-statement",
    "medication_outcome": "diary-medication-outcome",
    "oral_intake": "diary-oral-intake",
    "infusion_received": "diary-infusion-received",
    "menstruation": "diary-menstruation",
    "midas_score": "diary-midas-score",
    "hit6_score": "diary-hit6-score",
    "questionnaire_response": "diary-questionnaire-response",
}


def _observation(
    entry: DiaryEntry, part: DiaryPart, kind: str, status: str = "final", index: int | None = None,
    part_of: Resource | None = None,
) -> Resource:
    """The elements every diary Observation has, in FHIR element order (``partOf``: the event it is part of)."""
    return {
        "resourceType": "Observation",
        "meta": profile(PROFILES[kind]),
        "identifier": [identifier(DIARY_SYSTEM, diary_value(entry.entry_id, part, index))],
        **({"partOf": [{"reference": full_url(identifiers(part_of)[0])}]} if part_of is not None else {}),
        "status": status,
        "category": [{"coding": [{"system": CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": concept(terminology.observation_code(kind)),
        "subject": subject(entry.patient),
    }


def _performer(entry: DiaryEntry) -> list[dict[str, Any]]:
    # Patient-reported: the patient is the performer (US Core "screening and assessment").
    return [subject(entry.patient)]


def _component(kind: str, **value: Any) -> dict[str, Any]:
    return {"code": concept(terminology.observation_code(kind)), **value}


def to_fhir_diary_day(entry: DiaryEntry, members: list[Resource]) -> Resource:
    day = _observation(entry, "day", "diary_day")
    day["effectiveDateTime"] = entry.date
    day["performer"] = _performer(entry)
    if entry.headache == NOT_RECORDED:
        day["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT, "code": "not-asked", "display": "Not Asked"}]}
    else:
        day["valueBoolean"] = entry.headache is not None
    if entry.notes is not None:
        day["note"] = [{"text": entry.notes}]
    # R4 hasMember names Observations, QuestionnaireResponses and MolecularSequences only: a
    # MedicationStatement is found by its identifier (and from its outcome's partOf).
    held = [m for m in members if m["resourceType"] in HAS_MEMBER_TYPES]
    if held:
        day["hasMember"] = [{"reference": full_url(identifiers(m)[0])} for m in held]
    return with_text(day)


def to_fhir_attack(entry: DiaryEntry, attack: Attack) -> Resource:
    # An attack still going on is reported as preliminary; it becomes final once it has an end.
    observation = _observation(entry, "attack", "attack", "final" if attack.end else "preliminary")
    period = {"start": attack.start}
    if attack.end:
        period["end"] = attack.end
    observation["effectivePeriod"] = period
    observation["performer"] = _performer(entry)
    components: list[dict[str, Any]] = []
    if attack.peak_intensity is not None:
        components.append(_component("peak_intensity", valueInteger=attack.peak_intensity))
    if attack.location is not None:
        components.append(_component("location", valueCodeableConcept=concept(terminology.diary_code("location", attack.location))))
    if attack.quality is not None:
        components.append(_component("quality", valueCodeableConcept=concept(terminology.diary_code("quality", attack.quality))))
    if attack.worse_with_activity is not None:
        components.append(_component("worse_with_activity", valueBoolean=attack.worse_with_activity))
    for field, kind in ATTACK_LISTS:
        for value in getattr(attack, field):
            components.append(_component(kind, valueCodeableConcept=concept(terminology.diary_code(field, value))))
    if attack.disability is not None:
        components.append(_component("disability", valueCodeableConcept=concept(terminology.diary_code("disability", attack.disability))))
    if components:
        observation["component"] = components
    return with_text(observation)


def attack_for(entry: DiaryEntry, taken: MedicationTaken) -> dict[str, str] | None:
    """The reference to the attack a medication was taken for: the entry's attack Observation (by
    its fullUrl in the Bundle), None on a headache-free or unrecorded day. ``taken`` is there for
    the day an entry may hold several attacks and the one it was taken in has to be chosen."""
    if not isinstance(entry.headache, Attack):
        return None
    return {"reference": full_url(identifier(DIARY_SYSTEM, diary_value(entry.entry_id, "attack")))}


def to_fhir_medication_statement(entry: DiaryEntry, index: int, taken: MedicationTaken) -> Resource:
    """A medication the patient took, as they said it (R4 MedicationStatement: status ``completed``,
    "the medication is no longer being taken", the patient as ``informationSource``)."""
    dosage: dict[str, Any] = {}
    if taken.route is not None:
        dosage["route"] = concept(terminology.diary_code("route", taken.route))
    dosage["doseAndRate"] = [{"doseQuantity": taken.dose.fhir()}]
    statement: Resource = {
        "resourceType": "MedicationStatement",
        "meta": profile(PROFILES["medication_statement"]),
        "identifier": [identifier(DIARY_SYSTEM, diary_value(entry.entry_id, "medication", index))],
        "status": "completed",
        "medicationCodeableConcept": concept(taken.code, taken.drug),
        "subject": subject(entry.patient),
        "effectiveDateTime": taken.taken_at,
        "informationSource": subject(entry.patient),
    }
    reason = attack_for(entry, taken)
    if reason is not None:
        statement["reasonReference"] = [reason]
    statement["dosage"] = [dosage]
    return with_text(statement)


def two_hours_after(instant: str) -> str:
    """The instant 2 hours later, in the same UTC offset as written (``Z`` stays ``Z``)."""
    moment = parse_instant(instant)
    if moment is None:  # the input checks let only instants through
        raise ValueError(f"{instant!r} is not an instant")
    later = (moment + OUTCOME_DELAY).isoformat()
    return later.removesuffix("+00:00") + "Z" if instant.endswith("Z") else later


def to_fhir_medication_outcome(entry: DiaryEntry, index: int, taken: MedicationTaken, statement: Resource) -> Resource:
    """What the patient recorded of a medication's effect 2 hours after taking it (and of rescue
    medication and recurrence), ``partOf`` its MedicationStatement: one component per outcome."""
    observation = _observation(entry, "medication-outcome", "medication_outcome", index=index, part_of=statement)
    observation["effectiveDateTime"] = two_hours_after(taken.taken_at)
    observation["performer"] = _performer(entry)
    components = []
    for kind, value in taken.outcomes().items():
        if OUTCOME_VALUES[kind] == "valueCodeableConcept":
            components.append(_component(kind, valueCodeableConcept=concept(terminology.diary_code(kind, str(value)))))
        else:
            components.append(_component(kind, valueBoolean=value))
    observation["component"] = components
    return with_text(observation)


def to_fhir_oral_intake(entry: DiaryEntry, index: int, drink: Drink) -> Resource:
    observation = _observation(entry, "hydration", "oral_intake", index=index)
    observation["effectiveDateTime"] = drink.taken_at
    observation["performer"] = _performer(entry)
    observation["valueQuantity"] = drink.volume.fhir()
    observation["component"] = [_component("product", valueString=drink.product)]
    return with_text(observation)


def to_fhir_infusion_received(entry: DiaryEntry, infusion: InfusionReceived) -> Resource:
    observation = _observation(entry, "infusion", "infusion_received")
    observation["effectiveDateTime"] = infusion.received_at
    observation["performer"] = _performer(entry)
    observation["valueBoolean"] = True
    if infusion.protocol is not None:
        observation["component"] = [_component("protocol", valueString=infusion.protocol)]
    return with_text(observation)


def to_fhir_menstruation(entry: DiaryEntry, menstruating: bool) -> Resource:
    """Menstruating that day (true) or not (false): the days the summary reads the cycles from."""
    observation = _observation(entry, "menstruation", "menstruation")
    observation["effectiveDateTime"] = entry.date
    observation["performer"] = _performer(entry)
    observation["valueBoolean"] = menstruating
    return with_text(observation)


def to_fhir_questionnaire_response(entry: DiaryEntry, name: Literal["midas", "hit6"],
                                   answers: tuple[int, ...] | tuple[str, ...]) -> Resource:
    """The answers as given, one item per question (linkId ``q1`` ...): integers (days) for MIDAS,
    the answer's words for HIT-6. R4 gives a QuestionnaireResponse a single identifier."""
    keys = MIDAS_KEYS if name == "midas" else HIT6_KEYS
    value = "valueInteger" if name == "midas" else "valueString"
    response: Resource = {
        "resourceType": "QuestionnaireResponse",
        "meta": profile(PROFILES["questionnaire_response"]),
        "identifier": identifier(DIARY_SYSTEM, diary_value(entry.entry_id, name)),
        "questionnaire": QUESTIONNAIRES[name],
        "status": "completed",
        "subject": subject(entry.patient),
        "authored": entry.date,
        "source": subject(entry.patient),
        "item": [{"linkId": key, "answer": [{value: answer}]} for key, answer in zip(keys, answers, strict=True)],
    }
    return with_text(response)


def _score(entry: DiaryEntry, part: DiaryPart, kind: str, total: int, band: tuple[str, str], response: Resource) -> Resource:
    """A questionnaire's score: the total, its grade or impact band (a component), derived from the answers."""
    observation = _observation(entry, part, kind)
    observation["effectiveDateTime"] = entry.date
    observation["performer"] = _performer(entry)
    observation["valueInteger"] = total
    observation["derivedFrom"] = [{"reference": full_url(identifiers(response)[0])}]
    band_kind, value = band
    observation["component"] = [_component(band_kind, valueCodeableConcept=concept(terminology.diary_code(band_kind, value)))]
    return with_text(observation)


def to_fhir_midas_score(entry: DiaryEntry, answers: tuple[int, ...], response: Resource) -> Resource:
    score = scores.midas(list(answers), path="$.midas")
    return _score(entry, "midas-score", "midas_score", score.total, ("midas_grade", score.grade), response)


def to_fhir_hit6_score(entry: DiaryEntry, answers: tuple[str, ...], response: Resource) -> Resource:
    score = scores.hit6(list(answers), path="$.hit6")
    return _score(entry, "hit6-score", "hit6_score", score.total, ("hit6_impact", score.impact), response)
