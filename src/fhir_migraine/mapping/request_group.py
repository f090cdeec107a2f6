"""The RequestGroup of an order: the protocol's steps as actions, in order of administration.

Spec: https://hl7.org/fhir/R4/requestgroup.html
"""

from __future__ import annotations

from typing import Any

from fhir_migraine.identifiers import ORDER_SYSTEM, order_value
from fhir_migraine.inputs.orders import Order
from fhir_migraine.mapping.fhir import Resource, full_url, identifier, profile, subject
from fhir_migraine.mapping.narrative import with_text
from fhir_migraine.mapping.protocol_refs import canonical, min_session_extension, reason
from fhir_migraine.mapping.sequencing import conditions, related_actions


def to_fhir_request_group(order: Order, requests: list[Resource], authored: str) -> Resource:
    protocol = order.protocol
    group: Resource = {"resourceType": "RequestGroup", "meta": profile("migraine-infusion-group")}
    extensions = min_session_extension(protocol)
    if extensions:
        group["extension"] = extensions
    group["identifier"] = [identifier(ORDER_SYSTEM, order_value(order.order_id))]
    group["instantiatesCanonical"] = [canonical(protocol)]
    group["groupIdentifier"] = identifier(ORDER_SYSTEM, order_value(order.order_id))
    group["status"] = "active"
    group["intent"] = "order"
    if order.priority is not None:
        group["priority"] = order.priority
    group["subject"] = subject(order.patient)
    if order.encounter is not None:
        group["encounter"] = {"reference": order.encounter["reference"]}
    group["authoredOn"] = authored
    group["author"] = {"reference": order.requester["reference"]}
    if reason(protocol):
        group["reasonCode"] = reason(protocol)
    actions = []
    for index, (resolved, request) in enumerate(zip(order.steps, requests, strict=True)):
        action: dict[str, Any] = {
            "id": resolved.step.id,
            "prefix": str(resolved.sequence),
            "title": resolved.step.id,
            "textEquivalent": request["dosageInstruction"][0]["text"],
        }
        if conditions(resolved.step.prn):
            action["condition"] = conditions(resolved.step.prn)
        if related_actions(order.steps, index):
            action["relatedAction"] = related_actions(order.steps, index)
        action["resource"] = {"reference": full_url(request["identifier"][0])}
        actions.append(action)
    group["action"] = actions
    return with_text(group)
