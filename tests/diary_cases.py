"""A valid diary entry and the bad-input cases of each diary rule."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

ENTRY: dict[str, Any] = {
    "entry_id": "e-1",
    "patient": {"reference": "Patient/123"},
    "date": "2026-11-20",
    "headache": {
        "start": "2026-11-20T06:30:00+01:00",
        "end": "2026-11-20T14:00:00+01:00",
        "peak_intensity": 7,
        "location": "unilateral",
        "quality": "pulsating",
        "worse_with_activity": True,
        "symptoms": ["nausea", "photophobia"],
        "aura": ["visual"],
        "triggers": ["stress"],
        "disability": 2,
    },
    "menstruation": True,
    "medications": [{"drug": "sumatriptan", "dose": "50 mg", "route": "oral", "taken_at": "2026-11-20T07:00:00+01:00", "relief_2h": True,
                     "pain_2h": "mild", "pain_free_2h": False, "mbs_free_2h": True, "rescue": False, "recurrence_48h": False}],
    "hydration": [{"product": "MigraKet", "volume": "500 mL", "taken_at": "2026-11-20T08:00:00+01:00"}],
    "infusion": {"received_at": "2026-11-18T10:00:00+01:00", "protocol": "preventive-nutrient"},
    "midas": {"q1": 1, "q2": 2, "q3": 1, "q4": 3, "q5": 1},
    "hit6": {"q1": "sometimes", "q2": "rarely", "q3": "never", "q4": "very often", "q5": "always", "q6": "sometimes"},
    "notes": "free text",
}


@dataclass(frozen=True)
class DiaryCase:
    """A bad entry: the field changed, its new value (None deletes it), the path and CSV column."""

    id: str
    field: tuple[Any, ...]
    value: Any
    path: str
    column: str


DELETE = object()

BAD_ENTRIES = [
    DiaryCase("intensity-above-10", ("headache", "peak_intensity"), 11, "$.headache.peak_intensity", "peak_intensity"),
    DiaryCase("intensity-negative", ("headache", "peak_intensity"), -1, "$.headache.peak_intensity", "peak_intensity"),
    DiaryCase("intensity-not-an-integer", ("headache", "peak_intensity"), "7.5", "$.headache.peak_intensity", "peak_intensity"),
    DiaryCase("end-before-start", ("headache", "end"), "2026-11-20T05:00:00+01:00", "$.headache.end", "end"),
    DiaryCase("end-before-start-in-other-offset", ("headache", "end"), "2026-11-20T05:29:00Z", "$.headache.end", "end"),
    DiaryCase("start-without-offset", ("headache", "start"), "2026-11-20T06:30:00", "$.headache.start", "start"),
    DiaryCase("start-missing", ("headache", "start"), DELETE, "$.headache.start", "start"),
    DiaryCase("date-not-a-day", ("date",), "2026-02-30", "$.date", "date"),
    DiaryCase("date-wrong-shape", ("date",), "20/11/2026", "$.date", "date"),
    DiaryCase("unknown-symptom", ("headache", "symptoms"), ["nausea", "hiccups"], "$.headache.symptoms[1]", "symptoms"),
    DiaryCase("unknown-aura", ("headache", "aura"), ["smell"], "$.headache.aura[0]", "aura"),
    DiaryCase("unknown-trigger", ("headache", "triggers"), ["moon"], "$.headache.triggers[0]", "triggers"),
    DiaryCase("unknown-location", ("headache", "location"), "everywhere", "$.headache.location", "location"),
    DiaryCase("unknown-quality", ("headache", "quality"), "dull", "$.headache.quality", "quality"),
    DiaryCase("disability-out-of-range", ("headache", "disability"), 4, "$.headache.disability", "disability"),
    DiaryCase("worse-not-boolean", ("headache", "worse_with_activity"), "maybe", "$.headache.worse_with_activity", "worse_with_activity"),
    DiaryCase("relief-not-boolean", ("medications", 0, "relief_2h"), "sort of", "$.medications[0].relief_2h", "medications"),
    DiaryCase("pain-2h-not-on-the-scale", ("medications", 0, "pain_2h"), "unbearable", "$.medications[0].pain_2h", "medications"),
    DiaryCase("pain-free-not-boolean", ("medications", 0, "pain_free_2h"), "nearly", "$.medications[0].pain_free_2h", "medications"),
    DiaryCase("mbs-free-not-boolean", ("medications", 0, "mbs_free_2h"), "partly", "$.medications[0].mbs_free_2h", "medications"),
    DiaryCase("rescue-not-boolean", ("medications", 0, "rescue"), "twice", "$.medications[0].rescue", "medications"),
    DiaryCase("recurrence-not-boolean", ("medications", 0, "recurrence_48h"), "later", "$.medications[0].recurrence_48h",
              "medications"),
    DiaryCase("pain-free-with-mild-pain", ("medications", 0, "pain_free_2h"), True, "$.medications[0].pain_free_2h", "medications"),
    DiaryCase("no-pain-but-not-pain-free", ("medications", 0, "pain_2h"), "none", "$.medications[0].pain_free_2h", "medications"),
    DiaryCase("unknown-drug", ("medications", 0, "drug"), "unobtainium", "$.medications[0].drug", "medications"),
    DiaryCase("unknown-route", ("medications", 0, "route"), "inhaled", "$.medications[0].route", "medications"),
    DiaryCase("dose-as-volume", ("medications", 0, "dose"), "50 mL", "$.medications[0].dose", "medications"),
    DiaryCase("drink-volume-as-mass", ("hydration", 0, "volume"), "500 mg", "$.hydration[0].volume", "hydration"),
    DiaryCase("drink-time-not-an-instant", ("hydration", 0, "taken_at"), "morning", "$.hydration[0].taken_at", "hydration"),
    DiaryCase("menstruation-maybe", ("menstruation",), "maybe", "$.menstruation", "menstruation"),
    DiaryCase("menstruation-as-flow-level", ("menstruation",), "heavy", "$.menstruation", "menstruation"),
    DiaryCase("infusion-time-not-an-instant", ("infusion", "received_at"), "yesterday", "$.infusion.received_at", "infusion_received_at"),
    DiaryCase("patient-missing", ("patient",), DELETE, "$.patient", "patient"),
    DiaryCase("entry-id-with-spaces", ("entry_id",), "entry one", "$.entry_id", "entry_id"),
    DiaryCase("control-character-in-a-drink", ("hydration", 0, "product"), "Migra\x0cKet", "$.hydration[0].product", "hydration"),
    DiaryCase("drink-of-no-break-spaces", ("hydration", 0, "product"), "\xa0\xa0", "$.hydration[0].product", "hydration"),
    DiaryCase("notes-of-white-space-only", ("notes",), " \u3000\t", "$.notes", "notes"),
    DiaryCase("start-offset-beyond-14h", ("headache", "start"), "2026-11-20T06:30:00+23:59", "$.headache.start", "start"),
    DiaryCase("end-offset-beyond-14h", ("headache", "end"), "2026-11-20T14:00:00-14:01", "$.headache.end", "end"),
    DiaryCase("medication-offset-beyond-14h", ("medications", 0, "taken_at"), "2026-11-20T07:00:00+15:00",
              "$.medications[0].taken_at", "medications"),
    DiaryCase("intensity-fractional-number", ("headache", "peak_intensity"), 7.5, "$.headache.peak_intensity", "peak_intensity"),
    DiaryCase("symptoms-beyond-limit", ("headache", "symptoms"), ["nausea"] * 9, "$.headache.symptoms", "symptoms"),
    DiaryCase("medications-beyond-limit", ("medications",), ENTRY["medications"] * 21, "$.medications", "medications"),
    DiaryCase("drinks-beyond-limit", ("hydration",), ENTRY["hydration"] * 21, "$.hydration", "hydration"),
    DiaryCase("dose-text-beyond-limit", ("medications", 0, "dose"), "50" + " " * 70 + "mg", "$.medications[0].dose", "medications"),
    DiaryCase("midas-answer-above-92-days", ("midas", "q2"), 93, "$.midas.q2", "midas_q2"),
    DiaryCase("midas-answer-negative", ("midas", "q5"), -1, "$.midas.q5", "midas_q5"),
    DiaryCase("midas-answer-not-a-number", ("midas", "q3"), "some", "$.midas.q3", "midas_q3"),
    DiaryCase("midas-answer-fractional", ("midas", "q1"), 2.5, "$.midas.q1", "midas_q1"),
    DiaryCase("midas-answer-missing", ("midas", "q4"), DELETE, "$.midas.q4", "midas_q4"),
    DiaryCase("midas-work-days-beyond-the-period", ("midas", "q2"), 92, "$.midas.q2", "midas_q2"),
    DiaryCase("midas-household-days-beyond-the-period", ("midas", "q4"), 92, "$.midas.q4", "midas_q4"),
    DiaryCase("hit6-unknown-answer", ("hit6", "q3"), "often", "$.hit6.q3", "hit6_q3"),
    DiaryCase("hit6-answer-in-capitals", ("hit6", "q6"), "Never", "$.hit6.q6", "hit6_q6"),
    DiaryCase("hit6-answer-missing", ("hit6", "q1"), DELETE, "$.hit6.q1", "hit6_q1"),
    DiaryCase("taken-at-beyond-limit", ("hydration", 0, "taken_at"), "2026-11-20T08:00:00." + "0" * 30 + "Z",
              "$.hydration[0].taken_at", "hydration"),
]


def broken_entry(case: DiaryCase) -> dict[str, Any]:
    entry = copy.deepcopy(ENTRY)
    node = entry
    for key in case.field[:-1]:
        node = node[key]
    if case.value is DELETE:
        del node[case.field[-1]]
    else:
        node[case.field[-1]] = case.value
    return entry
