"""The order of the steps in FHIR: each action's ``relatedAction`` (with ``offsetDuration``), the
``condition`` of a conditional "as needed" step, and each step's own start instant.

Specs: https://hl7.org/fhir/R4/requestgroup.html (action.relatedAction, action.condition),
https://hl7.org/fhir/R4/valueset-action-relationship-type.html,
https://hl7.org/fhir/R4/metadatatypes.html#Expression, https://hl7.org/fhirpath/N1/
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.errors import InputError, Problem
from fhir_migraine.inputs.orders import ResolvedStep
from fhir_migraine.inputs.quantity import json_number
from fhir_migraine.inputs.sequencing import Prn

PAIN_SCORE = "72514-3"  # LOINC Pain severity - 0-10 verbal numeric rating [Score] - Reported
_INSTANT = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(.*)$")


def shift_instant(text: str, seconds: Decimal) -> str:
    """A FHIR dateTime moved by whole ``seconds``, written with the same UTC offset and the same
    fraction of a second as ``text`` (which the order loader has checked)."""
    if seconds == 0:
        return text
    match = _INSTANT.match(text)
    assert match is not None, text
    try:
        moved = datetime.fromisoformat(match.group(1)) + timedelta(seconds=int(seconds))
    except OverflowError:
        raise InputError.of([Problem("$.start", "the steps' timing reaches beyond the year 9999")], "order") from None
    return moved.isoformat() + (match.group(2) or "") + match.group(3)


def duration(seconds: Decimal) -> dict[str, Any]:
    """A FHIR Duration in minutes (seconds when not a whole minute)."""
    unit, value = ("min", seconds / 60) if seconds % 60 == 0 else ("s", seconds)
    return {"value": json_number(value), "unit": unit, "system": terminology.UCUM, "code": unit}


def related_actions(steps: Sequence[ResolvedStep], index: int) -> list[dict[str, Any]]:
    """How step ``index`` relates to another: its own placement, or else its offset from the
    previous step (after its start, or before it when a later step was placed earlier)."""
    resolved = steps[index]
    relation = resolved.step.relation
    if relation is not None:
        related: dict[str, Any] = {"actionId": relation.step, "relationship": relation.relationship}
        if relation.by is not None:
            related["offsetDuration"] = relation.by.fhir()
        return [related]
    if index == 0:
        return []
    previous = steps[index - 1]
    gap = resolved.offset - previous.offset
    related = {"actionId": previous.step.id, "relationship": "after-start" if gap >= 0 else "before-start"}
    if gap != 0:
        related["offsetDuration"] = duration(abs(gap))
    return [related]


def conditions(prn: Prn | None) -> list[dict[str, Any]]:
    """The applicability condition of a step given only when the pain score reaches a level.

    The FHIRPath expression is evaluated on the patient's most recent pain score Observation
    (LOINC 72514-3, 0 to 10, an integer as the diary writes it or a Quantity as some EHRs chart it),
    taken when the action falls due (its relatedAction offset); no score means not applicable.
    """
    if prn is None or prn.pain_at_least is None:
        return []
    level = prn.pain_at_least
    expression = (
        f"code.coding.where(system = '{terminology.LOINC}' and code = '{PAIN_SCORE}').exists() "
        f"and (value.ofType(integer) | value.ofType(Quantity).value).first() >= {level}"
    )
    return [
        {
            "kind": "applicability",
            "expression": {
                "description": f"The pain score (LOINC {PAIN_SCORE}, 0-10) taken when this action falls due "
                               f"is {level}/10 or more",
                "language": "text/fhirpath",
                "expression": expression,
            },
        }
    ]
