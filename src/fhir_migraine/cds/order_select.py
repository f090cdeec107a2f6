"""order-select: when the clinician selects a migraine-related order or diagnosis, a card per
matching protocol of the library, whose suggestion creates the protocol's draft orders for this
patient (the project's own order mapping, doses computed from the prefetched weight)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fhir_migraine import operations, terminology
from fhir_migraine.cds import context as patient_context
from fhir_migraine.cds.cards import card, card_id
from fhir_migraine.cds.context import array, codings, obj
from fhir_migraine.errors import InputError
from fhir_migraine.inputs.protocols import Protocol
from fhir_migraine.mapping.order_settings import OrderSettings

FindProtocol = Callable[[str, str | None], Protocol | None]
MIGRAINE_ICD10CM = "G43"  # ICD-10-CM G43 Migraine (CDC/NCHS ICD-10-CM Tabular List)
SOURCE = {"label": "fhir-migraine protocol library", "url": f"{terminology.CANONICAL_BASE}/PlanDefinition"}


def _selected(context: Mapping[str, Any], selections: Sequence[str]) -> list[dict[str, Any]]:
    found = []
    for item in array(obj(context.get("draftOrders")).get("entry")):
        resource = obj(obj(item).get("resource"))
        if f"{resource.get('resourceType')}/{resource.get('id')}" in selections:
            found.append(resource)
    return found


def _is_migraine_diagnosis(resource: Mapping[str, Any]) -> bool:
    concepts = [resource.get("code"), *array(resource.get("reasonCode"))]
    return any(system == terminology.ICD10CM and code.upper().startswith(MIGRAINE_ICD10CM)
               for concept in concepts for system, code in codings(concept))


def protocol_drugs(protocol: Protocol) -> set[str]:
    names = [s.drug.name for s in protocol.steps if s.drug] + [a.drug.name for s in protocol.steps for a in s.additives]
    return {terminology.drug_key(n) or terminology.normalize_name(n) for n in names}


def matching(selected: list[dict[str, Any]], protocols: list[Protocol]) -> list[Protocol]:
    """The protocols a selection calls for: one using a selected drug, or any for a migraine diagnosis."""
    keys = {d.key for r in selected if r.get("resourceType") == "MedicationRequest"
            for d in patient_context.request_drugs(r, "draft", "")}
    diagnosis = any(_is_migraine_diagnosis(r) for r in selected)
    return [p for p in protocols if p.status == "active" and (diagnosis or protocol_drugs(p) & keys)]


def order_document(protocol: Protocol, context: Mapping[str, Any], patient: patient_context.PatientContext,
                   hook_instance: str, now: datetime) -> dict[str, Any]:
    """The project's order document of a protocol for the hook's patient, ordered by its user."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document: dict[str, Any] = {
        "order_id": f"cds-{hook_instance[:8] or 'call'}-{protocol.id}",
        "protocol": protocol.id,
        "protocol_version": protocol.version,
        "patient": {"reference": f"Patient/{context.get('patientId')}"},
        "requester": {"reference": str(context.get("userId"))},
        "start": stamp,
        "authored": stamp,
    }
    if isinstance(context.get("encounterId"), str) and context["encounterId"]:
        document["encounter"] = {"reference": f"Encounter/{context['encounterId']}"}
    if patient.weight_kg is not None:
        document["weight"] = {"quantity": f"{patient.weight_kg.quantize(Decimal('0.1'))} kg"}
    if patient.age is not None:
        document["age"] = f"{patient.age} a"
    return document


def draft_resources(document: dict[str, Any], find: FindProtocol) -> list[dict[str, Any]]:
    """The MedicationRequests, RequestGroup and DetectedIssues of the order, in draft status, each with an id and
    the references between them as ``Type/id``: a suggestion's actions are processed as a FHIR
    transaction whose base is the EHR's (CDS Hooks 2.0, Suggestion; cds-hooks/docs#419, #610),
    where a ``urn:uuid`` fullUrl would not travel."""
    bundle = operations.map_order(document, find, now=lambda: document["authored"],
                                  settings=OrderSettings())
    # The order's DetectedIssues (an approved off-label regimen, a rate above the label) travel with
    # the requests that name them in ``detectedIssue``, so no reference is left dangling.
    kept = [e for e in bundle["entry"]
            if e["resource"]["resourceType"] in ("MedicationRequest", "RequestGroup", "DetectedIssue")]
    local = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['fullUrl'].rpartition(':')[2]}"
             for e in kept if str(e.get("fullUrl", "")).startswith("urn:uuid:")}
    found = []
    for entry in kept:
        resource = _with_local_references(entry["resource"], local)
        if entry.get("fullUrl") in local:
            resource = {"resourceType": resource["resourceType"], "id": local[entry["fullUrl"]].partition("/")[2],
                        **{k: v for k, v in resource.items() if k != "resourceType"}}
        found.append(resource)
    return found


def _with_local_references(value: Any, local: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: (local.get(v, v) if k == "reference" and isinstance(v, str) else _with_local_references(v, local))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_with_local_references(v, local) for v in value]
    return value


def cards(hook_instance: str, context: Mapping[str, Any], selections: Sequence[str],
          drafts: list[tuple[str, dict[str, Any]]], prefetch: Mapping[str, Any], *, now: datetime,
          protocols: FindProtocol | None, protocol_ids: Sequence[str]) -> list[dict[str, Any]]:
    if protocols is None:
        return []
    library = [p for i in protocol_ids if (p := protocols(i, None)) is not None]
    chosen = matching(_selected(context, selections), library)
    if not chosen:
        return []
    patient = patient_context.read(prefetch, [], now)
    found = []
    for index, protocol in enumerate(chosen):
        document = order_document(protocol, context, patient, hook_instance, now)
        try:
            resources = draft_resources(document, protocols)
        except InputError as exc:
            reason = "; ".join(str(p) for p in exc.problems) or exc.message
            weight = "" if patient.weight_kg is not None else " No weight was found for the patient."
            found.append(card(hook_instance, index, indicator="warning",
                              summary_text=f"Protocol {protocol.title} cannot be offered for this patient",
                              detail=f"The protocol's orders could not be computed: {reason}.{weight}", source=SOURCE))
            continue
        label = f"Order {protocol.title} (version {protocol.version})"
        actions = [{"type": "create", "description": f"Draft {r['resourceType']} of {protocol.id}", "resource": r}
                   for r in resources]
        found.append(card(hook_instance, index, indicator="info", summary_text=f"Protocol: {protocol.title}",
                          detail=f"The library's protocol **{protocol.title}** ({protocol.id}, version "
                          f"{protocol.version}) as draft orders for this patient"
                          + (f", doses for {patient.weight_kg:.1f} kg." if patient.weight_kg is not None else "."),
                          source={"label": "fhir-migraine protocol library", "url": protocol.canonical},
                          suggestions=[{"label": label, "uuid": card_id(hook_instance, "suggestion", index),
                                        "actions": actions}]))
    return found
