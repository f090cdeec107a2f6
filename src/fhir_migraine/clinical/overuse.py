"""Per calendar month: the risk of medication overuse (ICHD-3 8.2) from the days acute medication
was taken, class by class, and the chronic pattern of ICHD-3 1.3 from the headache days.

Days are counted, not doses: ICHD-3 8.2 counts days per month with the medication. "Regular for
more than 3 months" is read as a run of at least 4 consecutive calendar months, ending at the month
asked, that each reach the threshold (3 months is not more than 3). The run counts only months the
diary covers; ``from_diary_start`` says when it reaches the diary's first month, so the true run
may be longer. An interpretation of diary data, never a diagnosis. Sources: docs/clinical-rules.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_migraine.clinical.months import Month, Run, consecutive
from fhir_migraine.errors import InputError, Problem

CLASS_KEYS = ("triptan", "ergot", "gepant", "ditan", "nsaid", "simple-analgesic", "opioid", "combination-analgesic",
              "antiemetic", "corticosteroid", "cgrp-antibody", "supplement")
REGULAR_MONTHS = 4  # "> 3 months" in whole calendar months


@dataclass(frozen=True)
class OveruseClass:
    """A class of ICHD-3 8.2: the diary's class keys it counts, its days per month, its code."""

    name: str
    keys: tuple[str, ...]
    threshold: int
    ichd3: str


# ICHD-3 8.2.1-8.2.5. Paracetamol, aspirin and other NSAIDs are one class, non-opioid analgesics
# (8.2.3, >= 15 days); ICHD-3 8.2.5 note 1: "for the purposes of ICHD-3, both drugs are in the same class".
OVERUSE_CLASSES = (
    OveruseClass("ergot", ("ergot",), 10, "8.2.1"),
    OveruseClass("triptan", ("triptan",), 10, "8.2.2"),
    OveruseClass("non-opioid-analgesic", ("simple-analgesic", "nsaid"), 15, "8.2.3"),
    OveruseClass("opioid", ("opioid",), 10, "8.2.4"),
    OveruseClass("combination-analgesic", ("combination-analgesic",), 10, "8.2.5"),
)
# 8.2.6: any combination of the classes above on >= 10 days, no single class overused alone.
MULTIPLE = OveruseClass("multiple", tuple(k for c in OVERUSE_CLASSES for k in c.keys), 10, "8.2.6")
# Acute migraine drugs approved after ICHD-3 (2018): it sets no threshold for them.
NOT_COVERED = ("gepant", "ditan")
NOT_COVERED_NOTE = "not covered by ICHD-3 8.2 (it predates gepants and ditans); no threshold is applied"
# Preventive or adjunct classes, not drugs of 8.2.1-8.2.6: not counted.
NOT_COUNTED = ("antiemetic", "corticosteroid", "cgrp-antibody", "supplement")


@dataclass(frozen=True)
class Intake:
    """Medication of one class taken on one day (several intakes on a day count as one day)."""

    day: date
    drug_class: str


@dataclass(frozen=True)
class OveruseRisk:
    """A class at or over its ICHD-3 8.2 threshold in the month asked (or, for a class ICHD-3 does
    not cover, any use), with the run of consecutive months at or over it."""

    drug_class: str
    days: int
    threshold: int | None
    consecutive_months: int | None
    ichd3: str | None = None
    regular_over_3_months: bool = False
    from_diary_start: bool = False
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"class": self.drug_class, "days": self.days, "threshold": self.threshold,
                                 "consecutive_months": self.consecutive_months, "ichd3": self.ichd3,
                                 "regular_over_3_months": self.regular_over_3_months,
                                 "from_diary_start": self.from_diary_start}
        if self.note:
            found["note"] = self.note
        return found


@dataclass(frozen=True)
class ChronicPattern:
    """ICHD-3 1.3 read from the diary for one month: headache days, days with migraine features,
    and the run of months with both at or over 15 and 8."""

    month: Month
    headache_days: int
    migraine_days: int
    consecutive_months: int
    regular_over_3_months: bool
    from_diary_start: bool

    def as_dict(self) -> dict[str, Any]:
        return {"month": str(self.month), "headache_days": self.headache_days, "migraine_days": self.migraine_days,
                "consecutive_months": self.consecutive_months, "regular_over_3_months": self.regular_over_3_months,
                "from_diary_start": self.from_diary_start}


@dataclass(frozen=True)
class HeadacheDay:
    """A day with headache; ``migraine``: it had migraine features (1.3 C: criteria C and D of 1.1,
    or B and C of 1.2, as ``ichd3.Reading.migraine_features`` reads them)."""

    day: date
    migraine: bool = False


class _Days:
    """The days of each class key, by month."""

    def __init__(self, intakes: Iterable[Intake]) -> None:
        self.by_month: dict[Month, dict[str, set[date]]] = defaultdict(lambda: defaultdict(set))
        problems: list[Problem] = []
        self.first: Month | None = None
        for index, intake in enumerate(intakes):
            if intake.drug_class not in CLASS_KEYS:
                problems.append(Problem(f"$[{index}].drug_class",
                                        f"{intake.drug_class!r} is not a medication class; the classes are {', '.join(CLASS_KEYS)}"))
                continue
            month = Month.of(intake.day)
            self.by_month[month][intake.drug_class].add(intake.day)
            self.first = month if self.first is None else min(self.first, month)
        if problems:
            raise InputError.of(problems, "medication record")

    def count(self, keys: Iterable[str], month: Month) -> int:
        days = self.by_month.get(month, {})
        return len(set().union(*(days.get(key, set()) for key in keys)))

    def run(self, cls: OveruseClass, month: Month, first: Month | None) -> Run:
        """The consecutive months, ending at ``month``, with the class's keys on its threshold of days or more."""
        return consecutive(lambda m: self.count(cls.keys, m) >= cls.threshold, month, first)


def _first(found: Month | None, diary_start: date | None) -> Month | None:
    if diary_start is None:
        return found
    start = Month.of(diary_start)
    return start if found is None else min(start, found)


def _risk(cls: OveruseClass, days: int, run: Run) -> OveruseRisk:
    return OveruseRisk(cls.name, days, cls.threshold, run.months, cls.ichd3, run.months >= REGULAR_MONTHS, run.from_diary_start)


def medication_overuse(intakes: Iterable[Intake], month: Month, *, diary_start: date | None = None) -> list[OveruseRisk]:
    """The classes at or over their ICHD-3 8.2 threshold in ``month``, each with its run of
    consecutive months; ``multiple`` (8.2.6) when no class is over alone but two or more together
    reach 10 days; gepants and ditans taken that month, as not covered by ICHD-3 8.2.
    ``diary_start``: the first day the diary covers (else its first intake)."""
    days = _Days(intakes)
    first = _first(days.first, diary_start)
    found: list[OveruseRisk] = []
    for cls in OVERUSE_CLASSES:
        count = days.count(cls.keys, month)
        if count >= cls.threshold:
            found.append(_risk(cls, count, days.run(cls, month, first)))
    used = [cls for cls in OVERUSE_CLASSES if days.count(cls.keys, month) > 0]
    pooled = days.count(MULTIPLE.keys, month)
    if not found and len(used) >= 2 and pooled >= MULTIPLE.threshold:
        # The run counts months whose pooled days reach 10, whichever classes made them up.
        found.append(_risk(MULTIPLE, pooled, days.run(MULTIPLE, month, first)))
    for key in NOT_COVERED:
        count = days.count((key,), month)
        if count:
            found.append(OveruseRisk(key, count, None, None, note=NOT_COVERED_NOTE))
    return found


def chronic_pattern(days: Iterable[HeadacheDay], month: Month, *, diary_start: date | None = None) -> ChronicPattern:
    """ICHD-3 1.3 A and C for ``month``: headache on at least 15 days, migraine features on at least
    8, for more than 3 months. Several records of one day count once (migraine if any says so)."""
    by_day: dict[date, bool] = {}
    for record in days:
        by_day[record.day] = by_day.get(record.day, False) or record.migraine
    headache: dict[Month, int] = defaultdict(int)
    migraine: dict[Month, int] = defaultdict(int)
    for day, is_migraine in by_day.items():
        headache[Month.of(day)] += 1
        migraine[Month.of(day)] += is_migraine
    first = _first(min(headache) if headache else None, diary_start)

    def chronic(m: Month) -> bool:
        return headache.get(m, 0) >= 15 and migraine.get(m, 0) >= 8

    run = consecutive(chronic, month, first)
    return ChronicPattern(month, headache.get(month, 0), migraine.get(month, 0), run.months,
                          run.months >= REGULAR_MONTHS, run.from_diary_start)
