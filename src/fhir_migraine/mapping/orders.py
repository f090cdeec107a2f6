"""Order + protocol -> transaction Bundle of MedicationRequests and a RequestGroup.

One MedicationRequest per bag (its medication a contained Medication: base fluid and additives
as ingredients) and one per push or injection; all share ``groupIdentifier``; the RequestGroup
lists them in protocol order. The order's body weight travels inside each MedicationRequest as a
contained Observation (``supportingInformation``); it is written into the chart as a vital sign
only when the site asks for it. Spec: https://hl7.org/fhir/R4/medicationrequest.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
from fhir_migraine.mapping.fhir import Resource, concept, identifier, profile, subject, transaction
from fhir_migraine.mapping.medication_codes import medication_concept
from fhir_migraine.mapping.narrative import with_text
from fhir_migraine.mapping.order_settings import DEFAULT_ORDER_SETTINGS, OrderSettings
from fhir_migraine.mapping.protocol_refs import canonical, reason
from fhir_migraine.mapping.request_group import to_fhir_request_group
from fhir_migraine.terminology import Code

#: MedicationRequest.category codes (FHIR R4 medicationrequest-category).
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
CATEGORY_DISPLAYS = {"inpatient": "Inpatient", "outpatient": "Outpatient", "community": "Community"}
#: The weight's own code, and the more specific LOINC code saying how it was obtained (both in the
#: FHIR core ValueSet observation-vitalsign-bodyweight).
BODY_WEIGHT = terminology.Code(terminology.LOINC, "29463-7", "Body weight")
WEIGHT_SOURCES = {
    "measured": terminology.Code(terminology.LOINC, "3141-9", "Body weight Measured"),
    "stated": terminology.Code(terminology.LOINC, "3142-7", "Body weight Stated"),
}
WEIGHT_ID = "weight"  # the id of the contained weight in each MedicationRequest


@dataclass(frozen=True)
class MappedOrder:
    """An order's transaction Bundle, and the OperationOutcome of its warnings (None: none)."""

    bundle: Resource
    warnings: Resource | None


def to_fhir_bundle(order: Order, *, now: str, settings: OrderSettings = DEFAULT_ORDER_SETTINGS) -> Resource:
    """The transaction Bundle for an order (see to_fhir_order)."""
    return to_fhir_order(order, now=now, settings=settings).bundle


def to_fhir_order(order: Order, *, now: str, settings: OrderSettings = DEFAULT_ORDER_SETTINGS) -> MappedOrder:
    """The transaction Bundle for an order, with a DetectedIssue per finding (mapping/detected_issues.py)
    and the warnings to show beside it. ``now`` is authoredOn when the order gives none; ``settings``
    the status and intent the site sends orders with, and whether the weight is also charted as a
    vital sign."""
    authored = order.authored or now
    requests = [to_fhir_medication_request(order, step, authored, settings) for step in order.steps]
    found = findings(order)
    issues = []
    for finding in found:
        issue = to_fhir_detected_issue(order, finding, requests[finding.step], authored)
        requests[finding.step].setdefault("detectedIssue", []).append(detected_issue_reference(issue))
        issues.append(issue)
    group = to_fhir_request_group(order, requests, authored)
    group["status"], group["intent"] = settings.status, settings.intent  # those of its requests
    group = with_text(group)  # the narrative says the status and intent it now has
    charted = [to_fhir_vital_sign_weight(order, authored)] if order.weight and settings.weight_observation else []
    bundle = transaction([*requests, group, *issues, *charted])
    return MappedOrder(bundle, warnings_outcome(found, {i: i for i in range(len(requests))}))


def to_fhir_medication_request(order: Order, resolved: ResolvedStep, authored: str,
                               settings: OrderSettings = DEFAULT_ORDER_SETTINGS) -> Resource:
    protocol, step = order.protocol, resolved.step
    request: Resource = {"resourceType": "MedicationRequest", "meta": profile("migraine-infusion-request")}
    contained = [to_fhir_bag_medication(resolved)] if step.type == "infusion" else []
    if order.weight is not None:
        contained.append(to_fhir_order_weight(order))
    if order.age is not None:
        contained.append(to_fhir_age_observation(order))
    if contained:
        request["contained"] = contained
    request["identifier"] = [identifier(ORDER_STEP_SYSTEM, step_value(order.order_id, step.id))]
    request["instantiatesCanonical"] = [canonical(protocol)]
    request["groupIdentifier"] = identifier(ORDER_SYSTEM, order_value(order.order_id))
    # draft by default: the EHR's own signature and pharmacist verification make it active.
    request["status"] = settings.status
    request["intent"] = settings.intent
    if order.category is not None:
        request["category"] = [{"coding": [{"system": CATEGORY_SYSTEM, "code": order.category,
                                            "display": CATEGORY_DISPLAYS[order.category]}]}]
    if order.priority is not None:
        request["priority"] = order.priority
    if step.type == "infusion":
        request["medicationReference"] = {"reference": f"#bag-{step.id}"}
    else:
        assert step.drug is not None
        request["medicationCodeableConcept"] = medication_concept(step.drug, step.route)
    request["subject"] = subject(order.patient)
    if order.encounter is not None:
        request["encounter"] = {"reference": order.encounter["reference"]}
    supporting = []
    if order.weight is not None:
        # The weight the per-kg doses were calculated with, for the pharmacist's check.
        supporting.append({"reference": f"#{WEIGHT_ID}"})
    if order.age is not None:
        supporting.append({"reference": f"#{AGE_ID}"})
    if supporting:
        request["supportingInformation"] = supporting
    request["authoredOn"] = authored
    request["requester"] = {"reference": order.requester["reference"]}
    if reason(protocol):
        request["reasonCode"] = reason(protocol)
    if step.instructions:
        # Administration instructions for the nurse (R4 note: "extra information about the prescription").
        request["note"] = [{"text": text} for text in step.instructions]
    request["dosageInstruction"] = to_fhir_dosages(protocol, resolved, order.start)
    return with_text(request)


def to_fhir_order_weight(order: Order) -> Resource:
    """The order's weight, contained in each MedicationRequest: the value, when it was measured
    and whether it was measured or stated (LOINC 3141-9 / 3142-7 next to 29463-7), when given.
    No vital-signs category: it is what the order was calculated with, not a new chart entry."""
    assert order.weight is not None
    facts = order.weight_facts
    codings = [BODY_WEIGHT.coding()]
    if facts.source is not None:
        codings.append(WEIGHT_SOURCES[facts.source].coding())
    weight: Resource = {
        "resourceType": "Observation",
        "id": WEIGHT_ID,
        "meta": profile("migraine-order-weight"),
        "status": "final",
        "code": {"coding": codings},
        "subject": subject(order.patient),
    }
    if facts.measured_at is not None:
        weight["effectiveDateTime"] = facts.measured_at
    weight["valueQuantity"] = order.weight.fhir()
    return with_text(weight)


def to_fhir_vital_sign_weight(order: Order, authored: str) -> Resource:
    """The order's weight as a stand-alone vital sign in the chart (only when the site asks for it):
    the contained weight with a business identifier, the vital-signs category, and the time it was
    measured (the time of the order when not given)."""
    contained = to_fhir_order_weight(order)
    weight: dict[str, Any] = {
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
        "code": contained["code"],
        "subject": contained["subject"],
        "effectiveDateTime": contained.get("effectiveDateTime", authored),
        "valueQuantity": contained["valueQuantity"],
    }
    return with_text(weight)


AGE_ID = "age"
AGE = Code(terminology.LOINC, "30525-0", "Age")


def to_fhir_age_observation(order: Order) -> Resource:
    """The patient's age at the start, which the protocol's minimum age was checked against
    (contained in each MedicationRequest; LOINC 30525-0 Age)."""
    assert order.age is not None
    return with_text({
        "resourceType": "Observation",
        "id": AGE_ID,
        "status": "final",
        "code": concept(AGE),
        "subject": subject(order.patient),
        "effectiveDateTime": order.start,
        "valueQuantity": order.age.fhir(),
    })
