"""A patient's diary over a period, in figures a headache specialist reads at a visit: headache and
migraine days, acute-medication days by class, attacks, the medication-overuse risk (ICHD-3 8.2)
and the chronic pattern (ICHD-3 1.3). Pure: checked diary entries in, a JSON-ready dict out.

Days are the patient's local calendar days, in the UTC offset the entry's times are written with.
A day is a headache day when a recorded attack overlaps it, whatever the entry of that day says
(an attack that runs past midnight makes the next day a headache day too; one that ends exactly
at midnight does not); an attack continued in later entries is one attack (``mapping.attacks``).
A migraine day is a day overlapped by an attack with migraine features (ICHD-3 1.3 C, as
``clinical.ichd3`` reads it). The menstrual association (ICHD-3 A1.1.2) is read from the days the
diary records as menstruating. Sources and the rules: docs/clinical-rules.md.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any, cast

from fhir_migraine import terminology
from fhir_migraine.clinical import ichd3, menstrual
from fhir_migraine.clinical.months import Month
from fhir_migraine.clinical.overuse import HeadacheDay, Intake, chronic_pattern, medication_overuse
from fhir_migraine.errors import InputError, Problem
from fhir_migraine.inputs.diary import DiaryEntry
from fhir_migraine.inputs.orders import parse_instant
from fhir_migraine.mapping.attacks import Span, spans

#: Aspirin at or below this dose is the antiplatelet, not the analgesic (``low_dose_aspirin``).
ANTIPLATELET_MG = 100
#: The classes of acute headache medication (an acute-medication day has one of them); the
#: others (antiemetics, corticosteroids, CGRP antibodies, supplements) are counted by class only.
ACUTE_CLASSES = ("triptan", "ergot", "gepant", "ditan", "nsaid", "simple-analgesic", "opioid", "combination-analgesic")


def intensity(peak: int | None) -> str | None:
    """The 4-point scale of a 0–10 rating: 0 none, 1–3 mild, 4–6 moderate, 7–10 severe."""
    if peak is None:
        return None
    return "none" if peak == 0 else "mild" if peak <= 3 else "moderate" if peak <= 6 else "severe"


def reading(span: Span, taken: Sequence[Any]) -> ichd3.Reading:
    """The attack read against ICHD-3 (an interpretation, never a diagnosis); ``taken``: the acute
    medication taken during it (``Intakes.during``)."""
    attack = span.attack
    symptoms = set(attack.symptoms)
    relief = [m.relief_2h for m in taken if m.relief_2h is not None]
    kinds = [cast(ichd3.AuraType, kind) for kind in attack.aura if kind in ichd3.AURA_TYPES]
    aura = ichd3.Aura(tuple(ichd3.AuraSymptom(kind) for kind in kinds)) if attack.aura else None
    return ichd3.read_attack(ichd3.Attack(
        duration_hours=span.hours,
        treated=bool(taken),
        treatment_successful=(any(relief) if relief else None) if taken else None,
        unilateral=None if attack.location is None else attack.location == "unilateral",
        pulsating=None if attack.quality is None else attack.quality == "pulsating",
        intensity=intensity(attack.peak_intensity),  # type: ignore[arg-type]
        aggravated_by_routine_activity=attack.worse_with_activity,
        nausea="nausea" in symptoms, vomiting="vomiting" in symptoms,
        photophobia="photophobia" in symptoms, phonophobia="phonophobia" in symptoms,
        aura=aura,
    ))


class Intakes:
    """The diary's acute medication in time order, whichever day's entry records it, so the doses
    taken during an attack are found by bisection rather than by reading the whole diary again."""

    def __init__(self, entries: Iterable[DiaryEntry]) -> None:
        found = sorted(((when, n, m) for n, m in enumerate(m for e in entries for m in e.medications)
                        if is_acute(m) and (when := parse_instant(m.taken_at)) is not None), key=lambda t: (t[0], t[1]))
        self.times = [when for when, _, _ in found]
        self.medications = [m for _, _, m in found]

    def during(self, span: Span) -> list[Any]:
        """The acute medication taken from the attack's start to its end (its start when it has none)."""
        first = bisect_left(self.times, span.start)
        last = bisect_right(self.times, span.end or span.start)
        return self.medications[first:last]


def relieved_by_triptan_or_ergot(taken: Sequence[Any]) -> bool:
    """ICHD-3 1.3 C3 as a diary can record it: a triptan or an ergot taken during the attack
    (``taken``), with relief at 2 hours (the patient took it for a migraine; C3: "believed by the
    patient to be migraine at onset and relieved by a triptan or ergot derivative")."""
    for medication in taken:
        found = terminology.drug_class(medication.drug)
        if found is not None and found.key in ("triptan", "ergot") and medication.relief_2h:
            return True
    return False


def _local_day(text: str) -> date | None:
    when = parse_instant(text)
    return when.date() if when is not None else None


def medication_days(entries: Iterable[DiaryEntry], *, acute: bool = False) -> dict[str, set[date]]:
    """The days each class of medication was taken (a drug without a class is not counted);
    ``acute``: only drugs of the acute classes taken for attacks (not a preventive such as
    atogepant, ``terminology.preventive``)."""
    found: dict[str, set[date]] = defaultdict(set)
    for entry in entries:
        for medication in entry.medications:
            found_class = terminology.drug_class(medication.drug)
            day = _local_day(medication.taken_at)
            if found_class is None or day is None or low_dose_aspirin(medication):
                continue
            if acute and (found_class.key not in ACUTE_CLASSES or terminology.preventive(medication.drug)):
                continue
            found[found_class.key].add(day)
    return found


def low_dose_aspirin(medication: Any) -> bool:
    """Aspirin of at most ``ANTIPLATELET_MG`` a dose: taken to prevent clots (WHO ATC B01AC06,
    platelet aggregation inhibitor), not for pain (N02BA01): not an NSAID day."""
    dose = medication.dose
    return terminology.drug_key(medication.drug) == "aspirin" and dose.unit == "mg" and dose.value <= ANTIPLATELET_MG


def unclassified_days(entries: Iterable[DiaryEntry]) -> set[date]:
    """The days a medication without a class in the drug table was taken."""
    return {day for entry in entries for m in entry.medications
            if terminology.drug_class(m.drug) is None and (day := _local_day(m.taken_at)) is not None}


def is_acute(medication: Any) -> bool:
    """A drug of an acute class, taken for an attack (not a preventive, nor low-dose aspirin)."""
    found = terminology.drug_class(medication.drug)
    return found is not None and found.key in ACUTE_CLASSES and not terminology.preventive(medication.drug) \
        and not low_dose_aspirin(medication)


def one_patient(entries: Sequence[DiaryEntry]) -> dict[str, Any]:
    """The patient all the entries are about; InputError when they are about several."""
    patients = {repr(sorted(e.patient.items())): e.patient for e in entries}
    if len(patients) > 1:
        raise InputError.of([Problem("$.patient", f"the diary holds entries of {len(patients)} patients; a summary is of"
                                                  " one patient")], "diary")
    return next(iter(patients.values())) if patients else {}


def summarize(entries: Sequence[DiaryEntry], first: date, last: date) -> dict[str, Any]:
    """The figures of ``first`` to ``last`` (both included). The overuse risk and the chronic
    pattern are those of the calendar month of ``last``, with the months before it as far as the
    diary covers them."""
    if last < first:
        raise InputError.of([Problem("$.to", f"{last} is before {first}")], "request")
    patient = one_patient(entries)
    inside = _within(first, last)
    attacks = spans(entries)
    readings = readings_of(entries, attacks)
    headache = headache_days(attacks, readings)
    by_class = medication_days(entries)
    acute_by_class = medication_days(entries, acute=True)
    acute = set().union(*acute_by_class.values())
    in_period = [s for s in attacks if inside(s.start.date())]
    durations = [h for s in in_period if (h := s.hours) is not None]
    diary_start = min((date.fromisoformat(e.date) for e in entries), default=None)
    month, complete = assessed_month(last, diary_start)
    intakes = [Intake(day, key) for key, days in acute_by_class.items() for day in days]
    risks = medication_overuse(intakes, month, diary_start=diary_start)
    pattern = chronic_pattern((HeadacheDay(d, m) for d, m in headache.items()), month, diary_start=diary_start)
    return {
        "patient": patient,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "days_recorded": len({e.date for e in entries if inside(date.fromisoformat(e.date))}),
        "headache_days": sum(1 for d in headache if inside(d)),
        "migraine_days": sum(1 for d, m in headache.items() if m and inside(d)),
        "acute_medication_days": sum(1 for d in acute if inside(d)),
        "medication_days_by_class": {key: n for key in sorted(by_class)
                                     if (n := sum(1 for d in by_class[key] if inside(d)))},
        # Drugs the class table does not know (given by their own code): not in any count above.
        "unclassified_medication_days": len({d for d in unclassified_days(entries) if inside(d)}),
        "low_dose_aspirin_days": len({d for e in entries for m in e.medications
                                      if low_dose_aspirin(m) and (d := _local_day(m.taken_at)) is not None and inside(d)}),
        "attacks": len(in_period),
        "attacks_with_aura": sum(1 for s in in_period if s.attack.aura),
        "longest_attack_hours": round(max(durations), 2) if durations else None,
        "month": str(month),
        "month_complete": complete,
        "moh_risk": [r.as_dict() for r in risks if r.threshold is not None],
        # Classes ICHD-3 8.2 sets no threshold for (gepants, ditans), with their days in the month.
        "moh_not_assessed": [r.as_dict() for r in risks if r.threshold is None],
        "chronic_pattern": pattern.regular_over_3_months,
        "chronic_pattern_months": pattern.as_dict(),
        "menstrual_association": menstrual_association(entries, attacks, inside),
        "note": "figures read from patient-reported data: an interpretation, never a diagnosis",
        "attack_readings": [_reading_of(s, readings[id(s)][0]) for s in in_period],
        "ichd3_caveat": ichd3.CAVEAT,
    }


def readings_of(entries: Sequence[DiaryEntry], attacks: Sequence[Span]) -> dict[int, tuple[ichd3.Reading, bool]]:
    """Each attack (by ``id``) read against ICHD-3, and whether it makes its days migraine days:
    its features meet 1.3 C, or a triptan or ergot taken during it relieved it (C3)."""
    acute_doses = Intakes(entries)
    found = {}
    for span in attacks:
        taken = acute_doses.during(span)
        read = reading(span, taken)
        found[id(span)] = (read, read.migraine_features == ichd3.MET or relieved_by_triptan_or_ergot(taken))
    return found


def headache_days(attacks: Sequence[Span], readings: dict[int, tuple[ichd3.Reading, bool]]) -> dict[date, bool]:
    """Every local day an attack overlaps, and whether it is a migraine day."""
    headache: dict[date, bool] = {}
    for span in attacks:
        migraine = readings[id(span)][1]
        for day in span.days():
            headache[day] = headache.get(day, False) or migraine
    return headache


def menstruation_starts(entries: Iterable[DiaryEntry]) -> list[date]:
    """Day 1 of each recorded menstruation: a day recorded as menstruating whose day before is not
    (recorded as not menstruating, or not recorded at all)."""
    days = {date.fromisoformat(e.date) for e in entries if e.menstruation}
    return sorted(d for d in days if d - timedelta(days=1) not in days)


def menstrual_association(entries: Sequence[DiaryEntry], attacks: Sequence[Span], inside: Any) -> dict[str, Any]:
    """ICHD-3 A1.1.2 over the cycles whose day 1 is in the period, read against the attacks that start
    in the period or in the window (day -2 to +3) of one of those cycles, which may reach past the
    period: ``fits_a1_1_2`` None (not assessed) with fewer than three cycles."""
    starts = [d for d in menstruation_starts(entries) if inside(d)]
    windows = [menstrual.window(d) for d in starts]
    days = [day for s in attacks if inside(day := s.start.date()) or any(a <= day <= b for a, b in windows)]
    found = menstrual.menstrual_association(days, starts)
    assessed = found.association != "not-enough-data"
    return {
        "cycles": len(found.cycles),
        "fits_a1_1_2": found.association == "menstrually-related" if assessed else None,
        "pure_menstrual": found.pure_menstrual if assessed else None,
        **{k: v for k, v in found.as_dict().items() if k not in ("cycles", "pure_menstrual")},
        "cycle_windows": [c.as_dict() for c in found.cycles],
    }


def _reading_of(span: Span, found: ichd3.Reading) -> dict[str, Any]:
    """One attack of the period and how it reads against ICHD-3 (each entry's status and criteria)."""
    hours = span.hours
    return {"entry_id": span.entry.entry_id, "start": span.attack.start, "end": span.attack.end,
            "hours": round(hours, 2) if hours is not None else None,
            **{k: v for k, v in found.as_dict().items() if k != "caveat"}}


def assessed_month(last: date, diary_start: date | None) -> tuple[Month, bool]:
    """The calendar month ICHD-3's per-month rules are read for: that of ``last`` when the period
    ends on its last day, else the month before (a month the diary has not finished is not judged);
    and whether the diary covers all of it (from its first day)."""
    month = Month.of(last)
    if last != date.max and (last + timedelta(days=1)).month == last.month and (month.year, month.month) != (1, 1):
        month = month.previous()
    first_day = date(month.year, month.month, 1)
    return month, diary_start is not None and diary_start <= first_day


def _within(first: date, last: date) -> Any:
    return lambda day: first <= day <= last


def period(month: str | None, first: str | None, last: str | None,
           entries: Sequence[DiaryEntry]) -> tuple[date, date]:
    """The period asked: a calendar month (``YYYY-MM``), ``first``–``last``, or (neither) the
    diary's first to last day; InputError naming the field otherwise."""
    if month is not None:
        if first is not None or last is not None:
            raise InputError.of([Problem("$.month", "give a month, or from and to, not both")], "request")
        try:
            year, number = (int(part) for part in month.split("-")) if len(month) == 7 and month[4] == "-" else (0, 0)
            start = date(year, number, 1)
        except ValueError:
            raise InputError.of([Problem("$.month", f"{month!r} is not a month such as 2026-10")], "request") from None
        following = date(year + number // 12, number % 12 + 1, 1)
        return start, following - timedelta(days=1)
    if (first is None) != (last is None):
        raise InputError.of([Problem("$.from" if first is None else "$.to", "give both from and to")], "request")
    if first is not None and last is not None:
        return _date(first, "$.from"), _date(last, "$.to")
    if not entries:
        raise InputError.of([Problem("$", "the diary has no entries")], "diary")
    days = [date.fromisoformat(e.date) for e in entries]
    return min(days), max(days)


def _date(text: str, path: str) -> date:
    try:
        return date.fromisoformat(text) if len(text) == 10 else date.fromisoformat("x")
    except ValueError:
        raise InputError.of([Problem(path, f"{text!r} is not a calendar date (YYYY-MM-DD)")], "request") from None
