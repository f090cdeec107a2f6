"""Protocol -> PlanDefinition (an order set) with one contained ActivityDefinition per step.

Spec: https://hl7.org/fhir/R4/plandefinition.html, https://hl7.org/fhir/R4/activitydefinition.html
"""

from __future__ import annotations

from typing import Any

from fhir_migraine import terminology
from fhir_migraine.inputs.orders import Dose, ResolvedAdditive, ResolvedStep, with_offsets
from fhir_migraine.inputs.protocols import Protocol, Step
from fhir_migraine.inputs.quantity import Quantity
from fhir_migraine.mapping.dosage import to_fhir_bag_medication, to_fhir_dosages
from fhir_migraine.mapping.fhir import DOSE_CEILING_EXT, Resource, concept, profile
from fhir_migraine.mapping.narrative import with_text
from fhir_migraine.mapping.protocol_refs import min_session_extension, reason
from fhir_migraine.mapping.sequencing import conditions, related_actions

PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
USAGE_CONTEXT_TYPE = "http://terminology.hl7.org/CodeSystem/usage-context-type"
INTENT_DISPLAY = {
    "acute": "Acute migraine treatment",
    "status-migrainosus": "Status migrainosus treatment",
    "preventive": "Preventive migraine treatment",
}


def _as_ordered(protocol: Protocol) -> list[ResolvedStep]:
    """The protocol's steps with their own doses (no patient, so per-kg doses stay per kg)."""
    steps = []
    for i, step in enumerate(protocol.steps):
        dose = Dose(step.dose, step.dose) if step.dose is not None else None
        first = Dose(step.first_dose, step.first_dose) if step.first_dose is not None else None
        additives = tuple(ResolvedAdditive(a.drug, Dose(a.dose, a.dose), a.max_dose) for a in step.additives)
        steps.append(ResolvedStep(step, i + 1, dose, additives, step.rate, step.duration, first))
    return list(with_offsets(tuple(steps)))


def _ceiling(limit: Quantity | None) -> dict[str, Any]:
    """The protocol's ceiling on prescriber overrides: an extension, because
    Dosage.maxDosePerAdministration would tell the nurse the dose may be raised to it."""
    return {"extension": [{"url": DOSE_CEILING_EXT, "valueQuantity": limit.fhir()}]} if limit else {}


def _with_ceilings(bag: Resource, step: Step) -> Resource:
    """The bag with each additive's ceiling on its ingredient (ingredient 0 is the base fluid)."""
    ingredients = bag["ingredient"]
    for i, additive in enumerate(step.additives, start=1):
        ceiling = _ceiling(additive.max_dose)
        if ceiling:  # extensions first, as in every resource the project writes
            own = ingredients[i].get("extension", [])
            ingredients[i] = {"extension": own + ceiling["extension"],
                              **{k: v for k, v in ingredients[i].items() if k != "extension"}}
    return bag


def _name(protocol_id: str) -> str:
    return "".join(part.capitalize() for part in protocol_id.split("-"))


def to_fhir_plan_definition(protocol: Protocol) -> Resource:
    contained: list[Resource] = []
    actions: list[dict[str, Any]] = []
    ordered = _as_ordered(protocol)
    for index, resolved in enumerate(ordered):
        step = resolved.step
        activity: Resource = {
            "resourceType": "ActivityDefinition",
            "id": f"step-{step.id}",
            "status": protocol.status,
            "kind": "MedicationRequest",
            "intent": "order",
        }
        dosages = to_fhir_dosages(protocol, resolved, None)
        if step.type == "infusion":
            contained.append(with_text(_with_ceilings(to_fhir_bag_medication(resolved), step)))
            activity["productReference"] = {"reference": f"#bag-{step.id}"}
        else:
            assert step.drug is not None
            activity["productCodeableConcept"] = concept(step.drug.code, step.drug.name)
            dosages = [_ceiling(step.max_dose) | dosage for dosage in dosages]
        activity["dosage"] = dosages
        activity = with_text(activity)
        contained.append(activity)
        action: dict[str, Any] = {
            "id": step.id,
            "prefix": str(resolved.sequence),
            "title": step.id,
            "textEquivalent": activity["dosage"][0]["text"],
        }
        if protocol.priority is not None:
            action["priority"] = protocol.priority  # the default priority of the orders made from it
        if conditions(step.prn):
            action["condition"] = conditions(step.prn)
        if related_actions(ordered, index):
            action["relatedAction"] = related_actions(ordered, index)
        action["definitionCanonical"] = f"#step-{step.id}"
        actions.append(action)
    plan: Resource = {"resourceType": "PlanDefinition", "meta": profile("migraine-infusion-protocol"), "contained": contained}
    extensions = min_session_extension(protocol)
    if extensions:
        plan["extension"] = extensions
    plan.update(
        url=protocol.canonical,
        version=protocol.version,
        name=_name(protocol.id),
        title=protocol.title,
        type={"coding": [{"system": PLAN_TYPE, "code": "order-set", "display": "Order Set"}]},
        status=protocol.status,  # draft | active | retired: FHIR publication-status has the same codes
        useContext=[
            {
                "code": {"system": USAGE_CONTEXT_TYPE, "code": "focus", "display": "Clinical Focus"},
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": terminology.INFUSION_CS,
                            "code": protocol.intent,
                            "display": INTENT_DISPLAY[protocol.intent],
                        }
                    ]
                },
            }
        ],
    )
    if protocol.indication is not None:
        for action in actions:
            action["reason"] = reason(protocol)
    plan["action"] = actions
    return with_text(plan)
