"""A month of a patient's headache diary as a clinician reads it at a glance: the calendar (headache
days by peak intensity, acute medication by class, infusions, menstruation), the month's figures
and medication-overuse flags (``mapping.summary``), infusions received and ordered, the latest
MIDAS and HIT-6, the plausibility warnings, and where the data came from. Pure: checked diary
entries and the patient's MedicationRequests in, a JSON-ready dict out; the report and the app
render it (``report.render``).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.clinical import scores
from fhir_migraine.clinical.months import Month
from fhir_migraine.errors import InputError, Problem
from fhir_migraine.inputs.diary import DiaryEntry
from fhir_migraine.mapping import summary

#: The words of the calendar's intensity shading (the 4-point scale of a 0–10 rating).
INTENSITIES = ("none", "mild", "moderate", "severe")


def month_of(text: str, today: date) -> Month:
    """``YYYY-MM`` as a Month; InputError at ``$.month`` for a month that does not exist or has not
    begun yet (a report of the future would be empty)."""
    start, _ = summary.period(text, None, None, [])
    if start > today:
        raise InputError.of([Problem("$.month", f"{text} has not begun yet (today is {today.isoformat()})")], "request")
    return Month(start.year, start.month)


def _days(month: Month) -> tuple[date, date]:
    return date(month.year, month.month, 1), date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])


def month_view(entries: Sequence[DiaryEntry], requests: Sequence[dict[str, Any]], month: Month, *,
               made_at: datetime, warnings: Sequence[str] = ()) -> dict[str, Any]:
    """The month's view of one patient's diary (all its entries, so attacks and overuse runs from
    the months before count) and orders (``requests``: MedicationRequests as the EHR holds them)."""
    first, last = _days(month)
    figures = summary.summarize(entries, first, last)
    attacks = summary.spans(entries)
    readings = summary.readings_of(entries, attacks)
    headache = summary.headache_days(attacks, readings)
    peaks: dict[date, int] = {}
    for span in attacks:
        if span.attack.peak_intensity is not None:
            for day in span.days():
                peaks[day] = max(peaks.get(day, 0), span.attack.peak_intensity)
    acute = summary.medication_days(entries, acute=True)
    recorded = {date.fromisoformat(e.date): e for e in entries}
    weeks = []
    for week in calendar.Calendar(firstweekday=0).monthdatescalendar(month.year, month.month):
        weeks.append([_day(day, day.month == month.month, recorded.get(day), headache, peaks, acute) for day in week])
    inside = [e for e in entries if first <= date.fromisoformat(e.date) <= last]
    return {
        "patient": figures["patient"],
        "month": str(month),
        "month_name": first.strftime("%B %Y"),
        "from": first.isoformat(),
        "to": last.isoformat(),
        "weeks": weeks,
        "figures": {key: figures[key] for key in ("days_recorded", "headache_days", "migraine_days",
                                                   "acute_medication_days", "attacks", "attacks_with_aura",
                                                   "longest_attack_hours")},
        "days_in_month": (last - first).days + 1,
        "medication_days_by_class": [{"class": key, "name": _class_name(key), "days": days}
                                     for key, days in figures["medication_days_by_class"].items()],
        "moh_risk": [{**risk, "name": _class_name(risk["class"])} for risk in figures["moh_risk"]],
        "overuse_month": figures["month"],
        "chronic_pattern": figures["chronic_pattern"],
        "attacks": figures["attack_readings"],
        "infusions_received": [{"date": e.date, "at": e.infusion.received_at, "protocol": e.infusion.protocol}
                               for e in inside if e.infusion is not None],
        "infusions_ordered": [found for r in requests if (found := _ordered(r, first, last)) is not None],
        "midas": _latest_midas(entries, last),
        "hit6": _latest_hit6(entries, last),
        "notes": [{"date": e.date, "text": e.notes} for e in sorted(inside, key=lambda e: e.date) if e.notes],
        "warnings": list(warnings),
        "provenance": {
            "source": "patient-reported headache diary",
            "entries": len(inside),
            "first_entry": min((e.date for e in entries), default=None),
            "made_at": made_at.isoformat(timespec="seconds"),
            "note": figures["note"],
            "caveat": figures["ichd3_caveat"],
        },
    }


def _day(day: date, in_month: bool, entry: DiaryEntry | None, headache: dict[date, bool], peaks: dict[date, int],
         acute: dict[str, set[date]]) -> dict[str, Any]:
    peak = peaks.get(day)
    return {
        "date": day.isoformat(),
        "day": day.day,
        "in_month": in_month,
        "recorded": entry is not None,
        "headache": day in headache,
        "migraine": headache.get(day, False),
        "peak": peak,
        "intensity": summary.intensity(peak) if day in headache else None,
        "classes": sorted(key for key, days in acute.items() if day in days),
        "infusion": entry is not None and entry.infusion is not None,
        "menstruation": getattr(entry, "menstruation", None) if entry is not None else None,
    }


def _class_name(key: str) -> str:
    return terminology.drug_class_display(key)


def _ordered(request: dict[str, Any], first: date, last: date) -> dict[str, Any] | None:
    """A MedicationRequest of the month (its first dose's day, else when it was written)."""
    when = None
    for dosage in request.get("dosageInstruction", []):
        start = (((dosage.get("timing") or {}).get("repeat") or {}).get("boundsPeriod") or {}).get("start")
        if start and (when is None or start < when):
            when = start
    when = when or request.get("authoredOn")
    if not isinstance(when, str) or not first.isoformat() <= when[:10] <= last.isoformat():
        return None
    medication = request.get("medicationCodeableConcept") or {}
    name = medication.get("text") or next((c.get("display") for c in medication.get("coding", []) if c.get("display")), None)
    if name is None:
        contained = [r for r in request.get("contained", []) if r.get("resourceType") == "Medication"]
        name = (contained[0].get("code") or {}).get("text") if contained else None
    return {
        "date": when[:10],
        "medication": name or "medication not named",
        "dosage": "; ".join(d["text"] for d in request.get("dosageInstruction", []) if d.get("text")),
        "status": request.get("status"),
        "protocol": next((url.split("/")[-1] for url in request.get("instantiatesCanonical", [])), None),
    }


def _latest(entries: Sequence[DiaryEntry], last: date, field: str) -> DiaryEntry | None:
    found = [e for e in entries if getattr(e, field) is not None and date.fromisoformat(e.date) <= last]
    return max(found, key=lambda e: e.date) if found else None


def _latest_midas(entries: Sequence[DiaryEntry], last: date) -> dict[str, Any] | None:
    entry = _latest(entries, last, "midas")
    if entry is None or entry.midas is None:
        return None
    score = scores.midas(list(entry.midas))
    return {"date": entry.date, "total": score.total, "grade": score.grade, "meaning": score.meaning}


def _latest_hit6(entries: Sequence[DiaryEntry], last: date) -> dict[str, Any] | None:
    entry = _latest(entries, last, "hit6")
    if entry is None or entry.hit6 is None:
        return None
    score = scores.hit6(list(entry.hit6))
    return {"date": entry.date, "total": score.total, "impact": score.impact}
