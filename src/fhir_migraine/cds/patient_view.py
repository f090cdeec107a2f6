"""patient-view: the last 30 days of the patient's diary (headache days, acute-medication days,
medication-overuse risk; mapping/summary.py on the diary read back from its FHIR resources) and a
``smart`` link to the SMART app when it is configured."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from fhir_migraine.cds import context as patient_context
from fhir_migraine.cds.cards import card
from fhir_migraine.errors import InputError
from fhir_migraine.inputs import diary
from fhir_migraine.mapping import summary
from fhir_migraine.mapping.unmap_diary import entries_from_bundle

DAYS = 30
SOURCE = {"label": "fhir-migraine diary summary (ICHD-3 8.2 medication overuse)",
          "url": "https://ichd-3.org/8-headache-attributed-to-a-substance-or-its-withdrawal/8-2-medication-overuse-headache-moh/"}


def diary_entries(prefetch: Mapping[str, Any]) -> tuple[list[diary.DiaryEntry], int]:
    """The diary entries of the prefetched Observations and MedicationStatements, and how many
    entries could not be read back (left out of the figures, and said so on the card)."""
    found = [r for key in ("diary", "statements") for r in patient_context.resources(prefetch.get(key))]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in found]}
    problems: list[dict[str, Any]] = []
    entries = []
    for i, raw in enumerate(entries_from_bundle(bundle, problems)):
        try:
            entries.append(diary.load(raw, f"$.entries[{i}]"))
        except InputError:
            problems.append({"entry": i})
    return entries, len(problems)


def cards(hook_instance: str, context: Mapping[str, Any], prefetch: Mapping[str, Any], *, now: datetime,
          app_url: str | None) -> list[dict[str, Any]]:
    links = [{"label": "Open the migraine diary app", "url": app_url, "type": "smart"}] if app_url else None
    if prefetch.get("diary") is None or prefetch.get("statements") is None:
        return [card(hook_instance, 0, indicator="warning", summary_text="Migraine diary: could not be read",
                     detail="The service could not get the patient's diary from the EHR; no figures are shown.",
                     source=SOURCE, links=links)]
    entries, unread = diary_entries(prefetch)
    last = now.date()
    first = last - timedelta(days=DAYS - 1)
    recent = [e for e in entries if first.isoformat() <= e.date <= last.isoformat()]
    if not recent:
        return [card(hook_instance, 0, indicator="info", summary_text=f"Migraine diary: no entries in the last {DAYS} days",
                     detail="The patient recorded nothing in the diary in the last 30 days.", source=SOURCE, links=links)]
    figures = summary.summarize(entries, first, last)
    risks = [r for r in figures["moh_risk"] if r["days"] >= r["threshold"]]
    indicator = "warning" if risks else "info"
    risk_text = ", ".join(f"{r['class']} on {r['days']} days (ICHD-3 threshold {r['threshold']})" for r in risks) or "none"
    detail = (f"From {figures['from']} to {figures['to']} ({figures['days_recorded']} days recorded):\n\n"
              f"- headache days: **{figures['headache_days']}** (migraine days {figures['migraine_days']})\n"
              f"- acute-medication days: **{figures['acute_medication_days']}**\n"
              f"- medication-overuse risk ({figures['month']}): **{risk_text}**\n\n"
              f"_{figures['note']}_")
    if unread:
        detail += f"\n\n{unread} diary entries could not be read back and are not counted."
    return [card(hook_instance, 0, indicator=indicator,
                 summary_text=f"Migraine diary, {DAYS} days: {figures['headache_days']} headache days, "
                 f"{figures['acute_medication_days']} acute-medication days",
                 detail=detail, source=SOURCE, links=links)]
