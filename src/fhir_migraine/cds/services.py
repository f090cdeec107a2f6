"""The three CDS Hooks services: their discovery entries (with the prefetch each needs) and
``answer``, the response of one call.

Prefetch templates use only the tokens CDS Hooks 2.0 defines (``{{context.patientId}}``, a
root-level primitive field of the hook's context); https://cds-hooks.hl7.org/2.0/#prefetch-template
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fhir_migraine import operations
from fhir_migraine.cds import context as patient_context
from fhir_migraine.cds import order_select, patient_view
from fhir_migraine.cds.cards import rule_card
from fhir_migraine.cds.evaluate import evaluate
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
    if not isinstance(request, dict):
        raise InputError.of([Problem("$", "must be an object")], "CDS Hooks request")
    context = request.get("context")
    if not isinstance(context, dict):
        raise InputError.of([Problem("$.context", "must be an object")], "CDS Hooks request")
    if request.get("hook") not in (None, entry["hook"]):
        raise InputError.of([Problem("$.hook", f"must be {entry['hook']!r} for service {service_id!r}")],
                            "CDS Hooks request")
    hook_instance = str(request.get("hookInstance") or "")
    known = {key: prefetch.get(key) for key in entry["prefetch"]}
    for key, value in known.items():
        if value is not None and (not isinstance(value, dict) or not isinstance(value.get("resourceType"), str)):
            raise InputError.of([Problem(f"$.prefetch.{key}", "must be a FHIR resource or Bundle, or null")],
                                "CDS Hooks request")
    if service_id == ORDER_SIGN:
        drafts = draft_orders(context, "draftOrders")
        patient = patient_context.read(known, drafts, now)
        cards = [rule_card(hook_instance, i, rule, finding)
                 for i, (rule, finding) in enumerate(evaluate(patient, protocols))]
        return {"cards": cards}
    if service_id == ORDER_SELECT:
        selections = context.get("selections")
        if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
            raise InputError.of([Problem("$.context.selections", "must be an array of strings")], "CDS Hooks request")
        drafts = draft_orders(context, "draftOrders")
        return {"cards": order_select.cards(hook_instance, context, selections, drafts, known, now=now,
                                            protocols=protocols, protocol_ids=protocol_ids)}
    return {"cards": patient_view.cards(hook_instance, context, known, now=now, app_url=app_url)}


def draft_orders(context: dict[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
    """The MedicationRequests of ``context[key]`` (a Bundle) with their JSON paths; other resource
    types are left to other services. InputError naming the path when it is not a Bundle."""
    path = f"$.context.{key}"
    bundle = context.get(key)
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InputError.of([Problem(path, "must be a FHIR Bundle of the draft orders")], "CDS Hooks request")
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise InputError.of([Problem(f"{path}.entry", "must be an array")], "CDS Hooks request")
    found = []
    problems = []
    for i, item in enumerate(entries):
        resource = item.get("resource") if isinstance(item, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            problems.append(Problem(f"{path}.entry[{i}].resource", "must be a FHIR resource"))
        elif resource["resourceType"] == "MedicationRequest":
            problems += _structure_problems(resource, f"{path}.entry[{i}].resource")
            found.append((f"{path}.entry[{i}].resource", resource))
    if problems:
        raise InputError.of(problems, "CDS Hooks request")
    return found


def _structure_problems(resource: dict[str, Any], path: str) -> list[Problem]:
    """Where a draft order breaks the FHIR R4 structure (the rules read only well-formed orders).
    Only the base structure: a draft the EHR made from one of our suggestions still claims our
    profile, and its checks must run even if the EHR changed it (``meta`` is not read)."""
    outcome = operations.validate({key: value for key, value in resource.items() if key != "meta"})
    return [Problem(_json_path(path, issue), str(issue.get("diagnostics", "invalid")))
            for issue in outcome.get("issue", []) if issue.get("severity") in ("error", "fatal")]


def _json_path(path: str, issue: dict[str, Any]) -> str:
    expression = str((issue.get("expression") or [""])[0])
    element = expression.partition(".")[2]
    return f"{path}.{element}" if element else path
