"""Small FHIR resources for the CDS Hooks tests, built in code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir_migraine import terminology

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LOINC = "http://loinc.org"


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def patient(gender: str = "male", born: str = "1980-05-01") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "gender": gender, "birthDate": born}


def observation(code: str, value: Any, at: str = "2026-12-01T10:00:00Z", unit: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"resourceType": "Observation", "status": "final",
                             "code": {"coding": [{"system": LOINC, "code": code}]}, "effectiveDateTime": at}
    if unit is not None:
        found["valueQuantity"] = {"value": value, "unit": unit, "system": terminology.UCUM, "code": unit}
    else:
        found["valueCodeableConcept"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                                     "code": value}]}
    return found


def condition(code: str, system: str = terminology.ICD10CM, status: str = "active") -> dict[str, Any]:
    return {"resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]},
            "code": {"coding": [{"system": system, "code": code}]}, "subject": {"reference": "Patient/p1"}}


def concept(drug: str) -> dict[str, Any]:
    code = terminology.drug(drug)
    return {"coding": [code.coding()], "text": drug} if code is not None else {"text": drug}


def request(drug: str, dose: float | None = None, unit: str = "mg", start: str = "2026-12-02T12:00:00Z",
            status: str = "draft", rid: str = "d1", end: str | None = None) -> dict[str, Any]:
    dosage: dict[str, Any] = {"timing": {"repeat": {"boundsPeriod": {"start": start, **({"end": end} if end else {})}}}}
    if dose is not None:
        dosage["doseAndRate"] = [{"doseQuantity": {"value": dose, "unit": unit, "system": terminology.UCUM, "code": unit}}]
    return {"resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
            "medicationCodeableConcept": concept(drug), "subject": {"reference": "Patient/p1"},
            "authoredOn": start, "dosageInstruction": [dosage]}


def taken(drug: str, at: str, kind: str = "MedicationStatement") -> dict[str, Any]:
    return {"resourceType": kind, "status": "completed", "medicationCodeableConcept": concept(drug),
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": at}


def long_term(drug: str, start: str, end: str | None = None, status: str = "active") -> dict[str, Any]:
    """A MedicationStatement of a drug taken over time: an effectivePeriod, open unless ``end``."""
    return {"resourceType": "MedicationStatement", "status": status, "medicationCodeableConcept": concept(drug),
            "subject": {"reference": "Patient/p1"}, "effectivePeriod": {"start": start, **({"end": end} if end else {})}}


def sign_request(*drafts: dict[str, Any]) -> dict[str, Any]:
    return {"hook": "order-sign", "hookInstance": "d1f0a7b2-0000-4000-8000-000000000001",
            "context": {"userId": "Practitioner/1", "patientId": "p1", "draftOrders": bundle(*drafts)}}


def prefetch(**given: Any) -> dict[str, Any]:
    """Every order-sign prefetch key, empty unless given (None: could not be had)."""
    found: dict[str, Any] = {"patient": patient(), "observations": bundle(), "conditions": bundle(),
                             "medicationRequests": bundle(), "administrations": bundle(), "statements": bundle()}
    found.update(given)
    return found
