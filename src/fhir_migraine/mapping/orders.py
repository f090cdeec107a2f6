"""Order + protocol -> transaction Bundle of MedicationRequests, a RequestGroup and the weight.

One MedicationRequest per bag (its medication a contained Medication: base fluid and additives
as ingredients) and one per push or injection; all share ``groupIdentifier``; the RequestGroup
lists them in protocol order. Spec: https://hl7.org/fhir/R4/medicationrequest.html
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_migraine import terminology
from fhir_migraine.identifiers import ORDER_STEP_SYSTEM, ORDER_SYSTEM, ORDER_WEIGHT_SYSTEM, order_value, step_value
from fhir_migraine.inputs.orders import Order, ResolvedStep
from fhir_migraine.mapping.detected_issues import (
    detected_issue_reference,
    findings,
    to_fhir_detected_issue,
    warnings_outcome,
)
from fhir_migraine.mapping.dosage import to_fhir_bag_medication, to_fhir_dosages
from fhir_migraine.mapping.fhir import Resource, concept, full_url, identifier, profile, subject, transaction
from fhir_migraine.mapping.medication_codes import medication_concept
from fhir_migraine.mapping.protocol_refs import canonical, reason
from fhir_migraine.mapping.request_group import to_fhir_request_group
from fhir_migraine.terminology import Code


@dataclass(frozen=True)
class MappedOrder:
    """An order's transaction Bundle, and the OperationOutcome of its warnings (None: none)."""

    bundle: Resource
    warnings: Resource | None


def to_fhir_bundle(order: Order, *, now: str) -> Resource:
    """The transaction Bundle for an order; ``now`` is authoredOn when the order gives none."""
    return to_fhir_order(order, now=now).bundle


def to_fhir_order(order: Order, *, now: str) -> MappedOrder:
    """The transaction Bundle for an order, with a DetectedIssue per finding (mapping/detected_issues.py)
    and the warnings to show beside it."""
    authored = order.authored or now
    weight = to_fhir_weight_observation(order, authored) if order.weight else None
    requests = [to_fhir_medication_request(order, step, authored, weight) for step in order.steps]
    found = findings(order)
    issues = []
    for finding in found:
        issue = to_fhir_detected_issue(order, finding, requests[finding.step], authored)
        requests[finding.step].setdefault("detectedIssue", []).append(detected_issue_reference(issue))
        issues.append(issue)
    group = to_fhir_request_group(order, requests, authored)
    bundle = transaction([*requests, group, *issues, *([weight] if weight else [])])
    return MappedOrder(bundle, warnings_outcome(found, {i: i for i in range(len(requests))}))


def to_fhir_medication_request(order: Order, resolved: ResolvedStep, authored: str, weight: Resource | None) -> Resource:
    protocol, step = order.protocol, resolved.step
    request: Resource = {"resourceType": "MedicationRequest", "meta": profile("migraine-infusion-request")}
    contained = [to_fhir_bag_medication(resolved)] if step.type == "infusion" else []
    if order.age is not None:
        contained.append(to_fhir_age_observation(order))
    if contained:
        request["contained"] = contained
    request["identifier"] = [identifier(ORDER_STEP_SYSTEM, step_value(order.order_id, step.id))]
    request["instantiatesCanonical"] = [canonical(protocol)]
    request["groupIdentifier"] = identifier(ORDER_SYSTEM, order_value(order.order_id))
    request["status"] = "active"
    request["intent"] = "order"
    if step.type == "infusion":
        request["medicationReference"] = {"reference": f"#bag-{step.id}"}
    else:
        assert step.drug is not None
        request["medicationCodeableConcept"] = medication_concept(step.drug, step.route)
    request["subject"] = subject(order.patient)
    supporting = []
    if weight is not None:
        # Weight the per-kg doses were calculated with, for the pharmacist's check.
        supporting.append({"reference": full_url(weight["identifier"][0])})
    if order.age is not None:
        supporting.append({"reference": f"#{AGE_ID}"})
    if supporting:
        request["supportingInformation"] = supporting
    request["authoredOn"] = authored
    request["requester"] = {"reference": order.requester["reference"]}
    if reason(protocol):
        request["reasonCode"] = reason(protocol)
    request["dosageInstruction"] = to_fhir_dosages(protocol, resolved, order.start)
    return request


def to_fhir_weight_observation(order: Order, authored: str) -> Resource:
    """The body weight the per-kg doses were calculated with (LOINC 29463-7, as in US Core)."""
    assert order.weight is not None
    weight = order.weight
    return {
        "resourceType": "Observation",
        "meta": profile("migraine-order-weight"),
        "identifier": [identifier(ORDER_WEIGHT_SYSTEM, order_value(order.order_id))],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": terminology.LOINC, "code": "29463-7", "display": "Body weight"}]},
        "subject": subject(order.patient),
        "effectiveDateTime": authored,
        "valueQuantity": weight.fhir(),
    }


AGE_ID = "age"
AGE = Code(terminology.LOINC, "30525-0", "Age")


def to_fhir_age_observation(order: Order) -> Resource:
    """The patient's age at the start, which the protocol's minimum age was checked against
    (contained in each MedicationRequest; LOINC 30525-0 Age)."""
    assert order.age is not None
    return {
        "resourceType": "Observation",
        "id": AGE_ID,
        "status": "final",
        "code": concept(AGE),
        "subject": subject(order.patient),
        "effectiveDateTime": order.start,
        "valueQuantity": order.age.fhir(),
    }
