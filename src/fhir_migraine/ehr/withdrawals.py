"""Cancelling an order and retracting a diary entry in the EHR (pure: what is queued, and the status
each resource moves to; ``ehr.writer`` applies it).

A withdrawal is queued in the outbox like a push (kind ``withdrawal``, so it waits behind the
patient's earlier items, the order it cancels included) as a ``collection`` Bundle holding the
resource that heads what is withdrawn, as this project identifies it: the order's RequestGroup
(``identifier`` of the order system), or the diary day's Observation. The writer finds it in the
EHR, follows it to its members (``RequestGroup.action.resource``, ``Observation.hasMember``) and
updates each one whose status changes, guarded by its version (``If-Match``).

Statuses (FHIR R4 value sets, see docs/ehr-compatibility.md):

- MedicationRequest (medicationrequest-status): ``cancelled`` "withdrawn before any administrations
  have occurred": a ``draft`` request (never signed, so never given), or an active one that the EHR
  shows no MedicationAdministration for; otherwise ``stopped`` "permanently halted, before all of
  the administrations occurred", which holds whether or not a dose was given, so it is the choice
  when the EHR cannot tell. ``completed``, ``cancelled``, ``stopped`` and ``entered-in-error`` stay.
- RequestGroup (request-status has no ``cancelled``): ``revoked``, "terminated prior to the known
  full completion of the intended actions"; ``completed`` and ``entered-in-error`` stay.
- Observation (observation-status): ``entered-in-error`` for a retracted diary entry, "the
  observation has been withdrawn following previous final release"; the entry's MIDAS or HIT-6
  QuestionnaireResponse (questionnaire-answers-status) ``entered-in-error`` too, and its
  MedicationStatements (medication-statement-status). A day's ``hasMember`` cannot name a
  MedicationStatement (R4), so the writer looks for them: the patient's MedicationStatements
  carrying an identifier of the entry (``statement_of``), or, where the EHR cannot search them by
  patient, each identifier ``<entry_id>/medication/<i>`` in turn until one is not found.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fhir_migraine.identifiers import DIARY_SYSTEM, ORDER_SYSTEM, diary_value, order_value, parse_diary_value
from fhir_migraine.mapping.fhir import identifiers

Resource = dict[str, Any]
KIND = "withdrawal"
Action = Literal["cancel-order", "retract-diary"]
ACTION_SYSTEM = "https://fhir-migraine.org/fhir/CodeSystem/withdrawal"

#: Statuses a withdrawal leaves as they are (the resource is already at an end).
FINAL = {
    "MedicationRequest": frozenset({"completed", "cancelled", "stopped", "entered-in-error"}),
    "RequestGroup": frozenset({"revoked", "completed", "entered-in-error"}),
    "Observation": frozenset({"entered-in-error"}),
    "QuestionnaireResponse": frozenset({"entered-in-error"}),
    "MedicationStatement": frozenset({"entered-in-error"}),
}
#: What a diary retraction also withdraws that the day does not point to (found by identifier).
STATEMENT = "MedicationStatement"
#: What each action withdraws: the head's type, and the types of the members it points to.
WITHDRAWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cancel-order": ("RequestGroup", ("MedicationRequest",)),
    "retract-diary": ("Observation", ("Observation", "QuestionnaireResponse")),
}


def _part(action: Action, head: Resource) -> Resource:
    return {"resourceType": "Bundle", "type": "collection",
            "meta": {"tag": [{"system": ACTION_SYSTEM, "code": action}]},
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": head}]}


def order_cancellation(order_id: str, subject: Resource, reason: str | None = None) -> Resource:
    """The outbox part that cancels an order (``subject``: the Reference its resources carry); a
    ValueError for an order id that is not one. ``reason`` goes to each MedicationRequest's
    ``statusReason.text``."""
    head: Resource = {"resourceType": "RequestGroup", "identifier": [{"system": ORDER_SYSTEM, "value": order_value(order_id)}],
                      "subject": subject}
    if reason:
        head["note"] = [{"text": reason}]
    return _part("cancel-order", head)


def diary_retraction(entry_id: str, subject: Resource) -> Resource:
    """The outbox part that retracts a diary entry (its day Observation and the members it holds)."""
    head = {"resourceType": "Observation", "identifier": [{"system": DIARY_SYSTEM, "value": diary_value(entry_id)}],
            "subject": subject}
    return _part("retract-diary", head)


def action_of(part: Resource) -> Action | None:
    """The action of a withdrawal part; None for any other part."""
    for tag in (part.get("meta") or {}).get("tag") or []:
        if isinstance(tag, dict) and tag.get("system") == ACTION_SYSTEM and tag.get("code") in WITHDRAWS:
            return tag["code"]  # type: ignore[no-any-return]
    return None


def members(head: Resource) -> list[str]:
    """The literal references the head points to: an order's requests, a diary day's members."""
    if head.get("resourceType") == "RequestGroup":
        targets = [a.get("resource") for a in head.get("action") or [] if isinstance(a, dict)]
    else:
        targets = list(head.get("hasMember") or [])
    return [t["reference"] for t in targets if isinstance(t, dict) and isinstance(t.get("reference"), str)]


def statement_of(resource: Resource, entry_id: str) -> bool:
    """Whether the resource carries the identifier of a medication of the diary entry ``entry_id``."""
    for ident in identifiers(resource):
        if isinstance(ident, dict) and ident.get("system") == DIARY_SYSTEM:
            key = parse_diary_value(str(ident.get("value")))
            if key is not None and key.entry_id == entry_id and key.part == "medication":
                return True
    return False


def withdrawn(resource: Resource, action: Action, *, administered: bool | None = None,
              reason: str | None = None) -> Resource | None:
    """The resource as the withdrawal leaves it, or None when its status stays (already at an end).
    ``administered``: whether the EHR shows a MedicationAdministration for a MedicationRequest
    (None: it cannot tell)."""
    kind = resource.get("resourceType")
    status = resource.get("status")
    if status in FINAL.get(str(kind), frozenset()):
        return None
    if action == "retract-diary":
        return {**resource, "status": "entered-in-error"}
    if kind == "RequestGroup":
        return {**resource, "status": "revoked"}
    never_given = status == "draft" or administered is False
    changed = {**resource, "status": "cancelled" if never_given else "stopped"}
    if reason:
        changed["statusReason"] = {"text": reason}
    return changed
