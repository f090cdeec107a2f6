"""The business identifiers this project gives its resources: their systems, and how each value
is built from the input's ids and parsed back (pure, no I/O).

    system                      value                              resource
    {SID}/order                 {order_id}                         RequestGroup, MedicationRequest.groupIdentifier
    {SID}/order-step            {order_id}/{step_id}               MedicationRequest
    {SID}/order-weight          {order_id}                         Observation (the order's weight charted as a vital sign)
    {SID}/order-issue           {order_id}/{step_id}/{rule}        DetectedIssue (rate, off-label)
    {SID}/diary                 {entry_id}                         Observation (diary day)
                                {entry_id}/attack                  Observation (the attack of ``headache``)
                                {entry_id}/attack/{i}              Observation (``attacks[i]``)
                                {entry_id}/medication/{i}          MedicationStatement (acute medication taken)
                                {entry_id}/medication/{i}/outcome  Observation (its outcome at 2 hours)
                                {entry_id}/hydration/{i}           Observation (oral intake)
                                {entry_id}/infusion                Observation (infusion received)
                                {entry_id}/menstruation            Observation (menstruating that day or not)
                                {entry_id}/midas, /hit6            QuestionnaireResponse (the answers)
                                {entry_id}/midas-score, /hit6-score  Observation (the questionnaire's score)
    {SID}/diary-attack          {patient}/{attack id}              Observation (an attack the patient gave an id,
                                                                   and every record continuing it)
    {SID}/diary-report          {month}/{digest}                   DocumentReference (a month's report; the digest
                                                                   of its content, ``mapping.report_document``)

Order and entry ids follow the input schemas (``[A-Za-z0-9][A-Za-z0-9.\\-_]{0,63}``), step ids
the protocol's (``[a-z0-9]+(-[a-z0-9]+)*``), so ``/`` never occurs inside one and every value
parses back to exactly the ids it was built from. Each ``parse_*`` returns None for a value that
no ``build`` could have made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from fhir_migraine.terminology import CANONICAL_BASE

SID = f"{CANONICAL_BASE}/sid"
ORDER_SYSTEM = f"{SID}/order"
ORDER_STEP_SYSTEM = f"{SID}/order-step"
ORDER_WEIGHT_SYSTEM = f"{SID}/order-weight"
ORDER_ISSUE_SYSTEM = f"{SID}/order-issue"
DIARY_SYSTEM = f"{SID}/diary"
SUMMARY_SYSTEM = f"{SID}/diary-summary"
ATTACK_SYSTEM = f"{SID}/diary-attack"
REPORT_SYSTEM = f"{SID}/diary-report"

#: Every identifier system of the project, for searches that ask for "ours".
SYSTEMS = (ORDER_SYSTEM, ORDER_STEP_SYSTEM, ORDER_WEIGHT_SYSTEM, DIARY_SYSTEM)

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_]{0,63}")
_STEP_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_INDEX = re.compile(r"0|[1-9][0-9]{0,5}")

DiaryPart = Literal["day", "attack", "medication", "medication-outcome", "hydration", "infusion", "menstruation", "midas",
                    "hit6", "midas-score", "hit6-score"]
#: Parts that occur once per entry, and parts that are numbered (the position in the entry's list).
SINGLE_PARTS: dict[str, DiaryPart] = {
    "attack": "attack", "infusion": "infusion", "menstruation": "menstruation",
    "midas": "midas", "hit6": "hit6", "midas-score": "midas-score", "hit6-score": "hit6-score",
}
NUMBERED_PARTS: dict[str, DiaryPart] = {"attack": "attack", "medication": "medication", "hydration": "hydration"}
#: Parts that follow a numbered part: ``{entry_id}/medication/{i}/outcome`` is "medication-outcome".
SUFFIXED_PARTS: dict[tuple[str, str], DiaryPart] = {("medication", "outcome"): "medication-outcome"}


def _id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not an id of the input contracts")
    return value


# --- orders -------------------------------------------------------------------------------------


def order_value(order_id: str) -> str:
    """The value of an order's identifier (system ``ORDER_SYSTEM`` or ``ORDER_WEIGHT_SYSTEM``)."""
    return _id(order_id, "order_id")


def parse_order_value(value: str) -> str | None:
    """The order id of an ``ORDER_SYSTEM``/``ORDER_WEIGHT_SYSTEM`` value; None if malformed."""
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def step_value(order_id: str, step_id: str) -> str:
    """``{order_id}/{step_id}``: the value of one step's MedicationRequest identifier."""
    if not isinstance(step_id, str) or not _STEP_ID.fullmatch(step_id):
        raise ValueError(f"step id {step_id!r} is not a protocol step id")
    return f"{_id(order_id, 'order_id')}/{step_id}"


def issue_value(order_id: str, step_id: str, rule: str) -> str:
    """``{order_id}/{step_id}/{rule}``: the value of a DetectedIssue's identifier (rule ``rate``
    or ``off-label``)."""
    if rule not in ("rate", "off-label"):
        raise ValueError(f"no detected-issue rule {rule!r}")
    return f"{step_value(order_id, step_id)}/{rule}"


def parse_step_value(value: str) -> tuple[str, str] | None:
    """``(order_id, step_id)`` of an ``ORDER_STEP_SYSTEM`` value; None if malformed."""
    if not isinstance(value, str):
        return None
    order_id, slash, step_id = value.partition("/")
    if not slash or not _ID.fullmatch(order_id) or not _STEP_ID.fullmatch(step_id):
        return None
    return order_id, step_id


# --- diary --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiaryKey:
    """Which Observation of a diary entry a ``DIARY_SYSTEM`` value names."""

    entry_id: str
    part: DiaryPart = "day"
    index: int | None = None  # the position in the entry's attacks, medications or hydration list (or the outcome's medication)


def diary_value(entry_id: str, part: DiaryPart = "day", index: int | None = None) -> str:
    """The value of a diary Observation's identifier (see the module's table)."""
    base = _id(entry_id, "entry_id")
    if part == "day" and index is None:
        return base
    if part in SINGLE_PARTS and index is None:
        return f"{base}/{part}"
    numbered = isinstance(index, int) and not isinstance(index, bool) and index >= 0
    if part in NUMBERED_PARTS and numbered:
        return f"{base}/{part}/{index}"
    for (head, tail), suffixed in SUFFIXED_PARTS.items():
        if part == suffixed and numbered:
            return f"{base}/{head}/{index}/{tail}"
    raise ValueError(f"no diary identifier for part {part!r} with index {index!r}")


def parse_diary_value(value: str) -> DiaryKey | None:
    """The entry id, part and index of a ``DIARY_SYSTEM`` value; None if malformed."""
    if not isinstance(value, str):
        return None
    entry_id, *rest = value.split("/")
    if not _ID.fullmatch(entry_id):
        return None
    if not rest:
        return DiaryKey(entry_id)
    if len(rest) == 1 and rest[0] in SINGLE_PARTS:
        return DiaryKey(entry_id, SINGLE_PARTS[rest[0]])
    if len(rest) == 2 and rest[0] in NUMBERED_PARTS and _INDEX.fullmatch(rest[1]):
        return DiaryKey(entry_id, NUMBERED_PARTS[rest[0]], int(rest[1]))
    if len(rest) == 3 and (rest[0], rest[2]) in SUFFIXED_PARTS and _INDEX.fullmatch(rest[1]):
        return DiaryKey(entry_id, SUFFIXED_PARTS[(rest[0], rest[2])], int(rest[1]))
    return None


def summary_value(patient: str, first: str, last: str, risk: str | None = None) -> str:
    """``{patient}/{first}/{last}`` (and ``/overuse/{class}`` for one of its risks): the value of a
    diary summary's identifier (system ``SUMMARY_SYSTEM``), one per patient and period."""
    value = f"{patient}/{first}/{last}"
    return f"{value}/overuse/{risk}" if risk else value


def attack_value(patient: str, attack_id: str) -> str:
    """``{patient}/{attack id}`` (system ``ATTACK_SYSTEM``): one attack of one patient, on its first
    record and every continuation; ``patient`` is the patient's id or identifier value."""
    return f"{patient}/{_id(attack_id, 'attack id')}"


def parse_attack_value(value: str) -> str | None:
    """The attack id of an ``ATTACK_SYSTEM`` value (after its last ``/``); None if malformed."""
    if not isinstance(value, str):
        return None
    patient, slash, attack_id = value.rpartition("/")
    return attack_id if slash and patient and _ID.fullmatch(attack_id) else None
