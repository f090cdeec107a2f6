"""CDS Hooks 2.0 cards (https://cds-hooks.hl7.org/2.0/#card-attributes): a rule's finding as a
card with its source and, where the rule has a fix, a suggestion that updates the draft order."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from fhir_migraine.inputs.quantity import Quantity

SUMMARY_LIMIT = 140  # "summary: ... SHALL be <140 characters"
SERVICE_LABEL = "fhir-migraine CDS"


def card_id(hook_instance: str, *parts: object) -> str:
    """A stable uuid for the card or suggestion of one call, so a retried call answers the same."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join([hook_instance, *map(str, parts)])))


def _fill(template: str, fields: Mapping[str, Any]) -> str:
    try:
        return template.format_map(dict(fields))
    except (KeyError, IndexError, ValueError):
        return template


def summary(text: str) -> str:
    return text if len(text) < SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 2] + "…"


def card(hook_instance: str, index: int, *, summary_text: str, indicator: str, detail: str,
         source: Mapping[str, Any], suggestions: list[dict[str, Any]] | None = None,
         links: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "uuid": card_id(hook_instance, "card", index),
        "summary": summary(summary_text),
        "indicator": indicator,
        "detail": detail,
        "source": dict(source),
    }
    if suggestions:
        found["suggestions"] = suggestions
        found["selectionBehavior"] = "at-most-one"
    if links:
        found["links"] = links
    return found


def with_dose(resource: Mapping[str, Any], dose: Quantity) -> dict[str, Any]:
    """The draft MedicationRequest with its first dose set to ``dose`` (an ``update`` action's resource)."""
    changed = copy.deepcopy(dict(resource))
    for dosage in changed.get("dosageInstruction") or []:
        for rate in dosage.get("doseAndRate") or []:
            if "doseQuantity" in rate:
                rate["doseQuantity"] = dose.fhir()
                return changed
    return changed


def rule_card(hook_instance: str, index: int, rule: Mapping[str, Any], finding: Mapping[str, Any] | None) -> dict[str, Any]:
    """The card of one finding of a rule, or (``finding`` None) the card saying it could not run."""
    if finding is None:
        needs = ", ".join(rule.get("needs", ()))
        return card(hook_instance, index, indicator="warning",
                    summary_text=f"Check not run: {rule['id']} (patient data unavailable)",
                    detail=f"The check **{rule['id']}** could not run: the service could not get {needs} "
                    "from the EHR. Check it by hand before signing.", source=rule["source"])
    suggestions = []
    fix = rule.get("suggestion")
    draft = finding.get("draft")
    if fix is not None and draft is not None and isinstance(finding.get("new_dose"), Quantity):
        label = _fill(fix["label"], finding)
        suggestions.append({
            "label": label,
            "uuid": card_id(hook_instance, "suggestion", index),
            "actions": [{"type": "update", "description": label,
                         "resource": with_dose(draft.resource, finding["new_dose"])}],
        })
    # A protocol's own rule points at the protocol (its canonical URL) rather than the library.
    source = {**rule["source"], "url": finding.get("source_url") or rule["source"]["url"]}
    # A finding may raise its own indicator (droperidol above the QTc threshold is critical).
    indicator = str(finding.get("indicator", rule["indicator"]))
    return card(hook_instance, index, indicator=indicator, summary_text=_fill(rule["summary"], finding),
                detail=_fill(rule["detail"], finding), source=source, suggestions=suggestions)
