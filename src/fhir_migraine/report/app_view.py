"""What the SMART app shows beside the month's view (``report.month``): the trend of the months
before (headache, migraine and acute-medication days per month, ``mapping.summary``) with the
ICHD-3 8.2 medication-overuse thresholds, and the month's attacks with their features and the
ICHD-3 criteria each meets. Pure: checked diary entries in, JSON-ready dicts out.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date
from typing import Any

from fhir_migraine.clinical import overuse
from fhir_migraine.clinical.months import Month
from fhir_migraine.inputs.diary import Attack, DiaryEntry
from fhir_migraine.mapping import summary

#: How many months the trend shows: at least MIN_MONTHS (those before the diary began show no
#: entries), at most MAX_MONTHS, ending at the month shown.
MIN_MONTHS = 6
MAX_MONTHS = 12
#: The days a month of the ICHD-3 8.2 thresholds (8.2.1, 8.2.2, 8.2.4 to 8.2.6: 10 days; 8.2.3,
#: non-opioid analgesics: 15 days), from ``clinical.overuse``, drawn as lines on the trend.
THRESHOLDS = tuple(sorted({c.threshold for c in (*overuse.OVERUSE_CLASSES, overuse.MULTIPLE)}))
#: Which classes each threshold is for, as the chart's legend and its table say.
THRESHOLD_NAMES = {
    10: "ergots, triptans, opioids, combination analgesics, or several classes together (ICHD-3 8.2.1, 8.2.2, 8.2.4-8.2.6)",
    15: "simple analgesics and NSAIDs (ICHD-3 8.2.3)",
}


def months_back(month: Month, first_entry: date | None) -> list[Month]:
    """The months of the trend, oldest first: back to the diary's first month, between MIN_MONTHS
    and MAX_MONTHS of them, ending at ``month``."""
    wanted = MIN_MONTHS
    if first_entry is not None:
        since = (month.year - first_entry.year) * 12 + month.month - first_entry.month + 1
        wanted = max(MIN_MONTHS, min(MAX_MONTHS, since))
    found = [month]
    while len(found) < wanted:
        found.append(found[-1].previous())
    return list(reversed(found))


def trend(entries: Sequence[DiaryEntry], month: Month) -> list[dict[str, Any]]:
    """Each month of the trend: its headache, migraine and acute-medication days, the days
    recorded, and the thresholds its acute-medication days reach."""
    first_entry = min((date.fromisoformat(e.date) for e in entries), default=None)
    rows = []
    for shown in months_back(month, first_entry):
        first = date(shown.year, shown.month, 1)
        last = date(shown.year, shown.month, calendar.monthrange(shown.year, shown.month)[1])
        figures = summary.summarize(entries, first, last)
        acute = figures["acute_medication_days"]
        rows.append({"month": str(shown), "label": first.strftime("%b %Y"), "days_recorded": figures["days_recorded"],
                     "headache_days": figures["headache_days"], "migraine_days": figures["migraine_days"],
                     "acute_medication_days": acute, "reaches": [t for t in THRESHOLDS if acute >= t]})
    return rows


def attacks(entries: Sequence[DiaryEntry], view: dict[str, Any]) -> list[dict[str, Any]]:
    """The month's attacks (``view["attacks"]``, summary's ICHD-3 readings) with what the diary says
    of each: peak intensity, location, quality, worse with activity, symptoms, aura; the ICHD-3
    criteria it meets, and how it reads against each entry (met, not met, unknown)."""
    by_id = {e.entry_id: e for e in entries}
    rows = []
    for found in view["attacks"]:
        entry = by_id.get(found["entry_id"])
        headache = entry.headache if entry is not None and isinstance(entry.headache, Attack) else None
        features: list[str] = []
        if headache is not None:
            features += [value for value in (headache.location, headache.quality) if value]
            if headache.worse_with_activity:
                features.append("worse with activity")
            features += [s.replace("-", " ") for s in headache.symptoms]
        start = str(found["start"])
        rows.append({"start": found["start"], "began": f"{start[:10]} {start[11:16]}".strip(), "end": found["end"],
                     "hours": found["hours"],
                     "peak": headache.peak_intensity if headache is not None else None, "features": features,
                     "aura": list(headache.aura) if headache is not None else [],
                     "meets": _criteria_met(found["interpretations"]),
                     "readings": [f"{i['code']} {i['title']}: {i['status'].replace('-', ' ')}" for i in found["interpretations"]],
                     "warnings": found["warnings"]})
    return rows


def _criteria_met(interpretations: Sequence[dict[str, Any]]) -> list[str]:
    """The codes of the criteria met (``1.1 C``), each once, in the order the readings give them."""
    found: list[str] = []
    for interpretation in interpretations:
        for criterion in interpretation.get("criteria", []):
            if criterion["status"] == "met" and criterion["code"] not in found:
                found.append(criterion["code"])
    return found
