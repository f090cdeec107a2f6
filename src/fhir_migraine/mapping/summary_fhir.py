"""The diary summary (``mapping.summary``) as FHIR, for the clinician to see in the EHR: one
Observation (profile ``diary-summary``) with a component per figure, and for each class at risk of
medication overuse a DetectedIssue (profile ``diary-overuse-risk``) whose evidence is that
Observation. Codes: the project's migraine-diary CodeSystem (no standard code found for these
figures; docs/mapping.md). The Observation is derived data, not patient-reported: no performer.
"""

from __future__ import annotations

from typing import Any

from fhir_migraine import terminology
from fhir_migraine.identifiers import SUMMARY_SYSTEM, summary_value
from fhir_migraine.mapping.diary import CATEGORY
from fhir_migraine.mapping.fhir import Resource, concept, full_url, identifier, profile, subject
from fhir_migraine.mapping.narrative import with_text

#: The integer figures of the summary, in the order of its components.
COUNTS = (("days_recorded", "days_recorded"), ("headache_days", "headache_days"), ("migraine_days", "migraine_days"),
          ("acute_medication_days", "acute_medication_days"), ("attacks", "attack_count"),
          ("attacks_with_aura", "attacks_with_aura"))
HOURS = {"system": terminology.UCUM, "code": "h", "unit": "h"}


def patient_key(patient: dict[str, Any]) -> str:
    """The patient's part of the summary identifier: the id of ``Patient/<id>``, or the identifier's value."""
    if "reference" in patient:
        return str(patient["reference"]).rsplit("/", 1)[-1]
    return str(patient.get("identifier", {}).get("value", "unknown"))


def _component(kind: str, **value: Any) -> dict[str, Any]:
    return {"code": concept(terminology.observation_code(kind)), **value}


def class_kind(key: str) -> str:
    """The observation code kind of a medication class's days (``medication_days_simple_analgesic``)."""
    return f"medication_days_{key.replace('-', '_')}"


def to_fhir_summary(figures: dict[str, Any]) -> list[Resource]:
    """The summary Observation, then a DetectedIssue per medication-overuse risk."""
    value = summary_value(patient_key(figures["patient"]), figures["from"], figures["to"])
    components = [_component(kind, valueInteger=figures[key]) for key, kind in COUNTS]
    if figures["longest_attack_hours"] is not None:
        components.append(_component("longest_attack", valueQuantity={"value": figures["longest_attack_hours"], **HOURS}))
    components += [_component(class_kind(key), valueInteger=days)
                   for key, days in figures["medication_days_by_class"].items()]
    components.append(_component("chronic_pattern", valueBoolean=figures["chronic_pattern"]))
    fits = figures["menstrual_association"]["fits_a1_1_2"]
    if fits is not None:  # not assessed with fewer than three recorded cycles
        components.append(_component("menstrually_related", valueBoolean=fits))
    observation: Resource = {
        "resourceType": "Observation",
        "meta": profile("diary-summary"),
        "identifier": [identifier(SUMMARY_SYSTEM, value)],
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": concept(terminology.observation_code("diary_summary")),
        "subject": subject(figures["patient"]),
        "effectivePeriod": {"start": figures["from"], "end": figures["to"]},
        "component": components,
        "note": [{"text": f"{figures['note']}. Medication-overuse risk and chronic pattern for {figures['month']}."}],
    }
    found = [with_text(observation)]
    evidence = {"reference": full_url(observation["identifier"][0])}
    for risk in figures["moh_risk"]:
        found.append(with_text(_overuse(figures, risk, evidence)))
    return found


def _overuse(figures: dict[str, Any], risk: dict[str, Any], evidence: dict[str, str]) -> Resource:
    months = risk["consecutive_months"]
    detail = (f"{risk['class']} taken on {risk['days']} days in {figures['month']} (ICHD-3 {risk['ichd3']} threshold: "
              f"{risk['threshold']} days a month), {months} consecutive month(s) at or over it"
              f"{' as far as the diary goes back' if risk.get('from_diary_start') else ''}; "
              f"{'regular for more than 3 months' if risk['regular_over_3_months'] else 'not yet more than 3 months'}."
              " A risk read from patient-reported data, not a diagnosis.")
    return {
        "resourceType": "DetectedIssue",
        "meta": profile("diary-overuse-risk"),
        "identifier": [identifier(SUMMARY_SYSTEM, summary_value(patient_key(figures["patient"]), figures["from"],
                                                                 figures["to"], risk["class"]))],
        "status": "final",
        "code": concept(terminology.observation_code("overuse_risk")),
        "severity": "moderate",
        "patient": subject(figures["patient"]),
        "identifiedDateTime": figures["to"],
        "evidence": [{"detail": [evidence]}],
        "detail": detail,
    }
