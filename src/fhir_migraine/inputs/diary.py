"""Headache diary entries: checked against the schema and the rules of the diary, and typed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.clinical.scores import HIT6_ITEMS, MIDAS_DISJOINT_PAIRS, MIDAS_PERIOD_DAYS, MIDAS_QUESTIONS
from fhir_migraine.errors import InputError
from fhir_migraine.inputs import schema
from fhir_migraine.inputs.orders import instant_problem, parse_instant
from fhir_migraine.inputs.quantity import DOSE, Collector, Quantity
from fhir_migraine.terminology import Code


@dataclass(frozen=True)
class Attack:
    start: str
    end: str | None = None
    peak_intensity: int | None = None
    location: str | None = None
    quality: str | None = None
    worse_with_activity: bool | None = None
    symptoms: tuple[str, ...] = ()
    aura: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()
    disability: int | None = None


@dataclass(frozen=True)
class MedicationTaken:
    drug: str
    code: Code
    dose: Quantity
    taken_at: str
    route: str | None = None
    relief_2h: bool | None = None
    # Outcomes as the IHS guidelines for acute-treatment trials define them (docs/clinical-rules.md).
    pain_2h: str | None = None  # none, mild, moderate, severe
    pain_free_2h: bool | None = None
    mbs_free_2h: bool | None = None  # free of the most bothersome symptom
    rescue: bool | None = None  # rescue medication taken
    recurrence_48h: bool | None = None

    def outcomes(self) -> dict[str, str | bool]:
        """The 2-hour outcomes the patient recorded, by field name, in ``OUTCOMES`` order."""
        return {name: value for name in OUTCOMES if (value := getattr(self, name)) is not None}


#: The latest local time a medication with outcomes can be taken at (its outcome is dated 2 hours later).
LAST_OUTCOME = datetime(9999, 12, 31, 21, 59, 59, 999999)
#: The outcome fields of a medication taken, in the order they are written.
OUTCOMES = ("relief_2h", "pain_2h", "pain_free_2h", "mbs_free_2h", "rescue", "recurrence_48h")


@dataclass(frozen=True)
class Drink:
    product: str
    volume: Quantity
    taken_at: str


@dataclass(frozen=True)
class InfusionReceived:
    received_at: str
    protocol: str | None = None


NOT_RECORDED = "not-recorded"
MIDAS_KEYS = tuple(f"q{i}" for i in range(1, MIDAS_QUESTIONS + 1))
HIT6_KEYS = tuple(f"q{i}" for i in range(1, HIT6_ITEMS + 1))


@dataclass(frozen=True)
class DiaryEntry:
    """One diary day. ``headache`` is an Attack, None (a headache-free day) or NOT_RECORDED."""

    entry_id: str
    patient: dict[str, Any]
    date: str
    headache: Attack | None | str
    medications: tuple[MedicationTaken, ...] = ()
    hydration: tuple[Drink, ...] = ()
    infusion: InfusionReceived | None = None
    midas: tuple[int, ...] | None = None  # the answers to MIDAS questions 1 to 5, in days
    hit6: tuple[str, ...] | None = None  # the answers to HIT-6 items 1 to 6 (never ... always)
    notes: str | None = None
    menstruation: bool | None = None  # menstruating that day (True), not (False), not recorded (None)


def whole(value: int | float | None) -> int | None:
    """An integer field as an int: the schema's "integer" admits 7.0, which is read as 7
    (docs/mapping.md), so the mapping never writes a decimal where FHIR wants an integer."""
    return None if value is None else int(value)


def load(document: Any, base: str = "$") -> DiaryEntry:
    """A checked diary entry, or InputError listing every problem with its JSON path."""
    problems = schema.check("diary-entry", document, base)
    if problems:
        raise InputError.of(problems, "diary entry")
    checker = _Checker(base)
    entry = checker.entry(document)
    if checker.problems:
        raise InputError.of(checker.problems, "diary entry")
    return entry


class _Checker(Collector):
    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def fail(self, path: str, message: str) -> None:
        super().fail(self.base + path[1:], message)

    def instant(self, text: str, path: str) -> datetime | None:
        problem = instant_problem(text, "2026-11-20T06:30:00+01:00")
        if problem is not None:
            self.fail(path, problem)
        return parse_instant(text)

    def entry(self, doc: dict[str, Any]) -> DiaryEntry:
        try:
            date.fromisoformat(doc["date"])
        except ValueError:
            self.fail("$.date", f"{doc['date']!r} is not a calendar date (YYYY-MM-DD)")
        headache: Attack | None | str = NOT_RECORDED
        if "headache" in doc:
            headache = self.attack(doc["headache"]) if doc["headache"] is not None else None
        medications = tuple(
            m for i, raw in enumerate(doc.get("medications", [])) if (m := self.medication(raw, f"$.medications[{i}]"))
        )
        hydration = tuple(
            d for i, raw in enumerate(doc.get("hydration", [])) if (d := self.drink(raw, f"$.hydration[{i}]"))
        )
        infusion = None
        if "infusion" in doc:
            raw = doc["infusion"]
            self.instant(raw["received_at"], "$.infusion.received_at")
            infusion = InfusionReceived(raw["received_at"], raw.get("protocol"))
        return DiaryEntry(
            entry_id=doc["entry_id"],
            patient=doc["patient"],
            date=doc["date"],
            headache=headache,
            medications=medications,
            hydration=hydration,
            infusion=infusion,
            midas=self.midas(doc["midas"]) if "midas" in doc else None,
            hit6=tuple(doc["hit6"][key] for key in HIT6_KEYS) if "hit6" in doc else None,
            notes=doc.get("notes"),
            menstruation=doc.get("menstruation"),
        )

    def midas(self, raw: dict[str, Any]) -> tuple[int, ...]:
        answers = tuple(int(raw[key]) for key in MIDAS_KEYS)
        for first, second in MIDAS_DISJOINT_PAIRS:
            together = answers[first] + answers[second]
            if together > MIDAS_PERIOD_DAYS:
                self.fail(f"$.midas.{MIDAS_KEYS[second]}",
                          f"questions {first + 1} and {second + 1} count distinct days of the same 3 months, so "
                          f"together at most {MIDAS_PERIOD_DAYS}; they are {answers[first]} + {answers[second]} = {together}")
        return answers

    def attack(self, raw: dict[str, Any]) -> Attack:
        start = self.instant(raw["start"], "$.headache.start")
        if "end" in raw:
            end = self.instant(raw["end"], "$.headache.end")
            if start is not None and end is not None and end < start:
                self.fail("$.headache.end", f"{raw['end']} is before the start {raw['start']}")
        return Attack(
            start=raw["start"],
            end=raw.get("end"),
            peak_intensity=whole(raw.get("peak_intensity")),
            location=raw.get("location"),
            quality=raw.get("quality"),
            worse_with_activity=raw.get("worse_with_activity"),
            symptoms=tuple(raw.get("symptoms", [])),
            aura=tuple(raw.get("aura", [])),
            triggers=tuple(raw.get("triggers", [])),
            disability=whole(raw.get("disability")),
        )

    def medication(self, raw: dict[str, Any], path: str) -> MedicationTaken | None:
        taken_at = self.instant(raw["taken_at"], f"{path}.taken_at")
        if taken_at is not None and any(name in raw for name in OUTCOMES) and taken_at.replace(tzinfo=None) > LAST_OUTCOME:
            # The outcome Observation is dated 2 hours later, which FHIR's dateTime (years to 9999) must hold.
            self.fail(f"{path}.taken_at", "is less than 2 hours before the end of the year 9999: its outcomes at 2 hours "
                                          "cannot be dated")
        dose = self.quantity(raw["dose"], f"{path}.dose", DOSE)
        own = raw.get("code")
        if own is not None:
            code: Code | None = Code(terminology.resolve_system(own["system"]), own["code"], own.get("display") or raw["drug"])
        else:
            code = terminology.drug(raw["drug"])
            if code is None:
                self.fail(
                    f"{path}.drug",
                    f"unknown drug {raw['drug']!r}: not in the terminology table; give its code as {{system, code, display}} in 'code'",
                )
        self.pain_freedom(raw, path)
        if code is None or dose is None:
            return None
        return MedicationTaken(raw["drug"], code, dose, raw["taken_at"], raw.get("route"),
                               **{name: raw.get(name) for name in OUTCOMES})

    def pain_freedom(self, raw: dict[str, Any], path: str) -> None:
        """Pain freedom at 2 hours is pain "none" on the 4-point scale (IHS guidelines): when both
        are recorded they must agree; neither is derived from the other."""
        pain, free = raw.get("pain_2h"), raw.get("pain_free_2h")
        if pain is None or free is None or free == (pain == "none"):
            return
        said = "pain-free" if free else "not pain-free"
        self.fail(f"{path}.pain_free_2h",
                  f"says {said} at 2 hours but pain_2h is {pain!r}: pain freedom is pain 'none' on the 4-point scale")

    def drink(self, raw: dict[str, Any], path: str) -> Drink | None:
        self.instant(raw["taken_at"], f"{path}.taken_at")
        volume = self.quantity(raw["volume"], f"{path}.volume", ("volume",))
        return Drink(raw["product"], volume, raw["taken_at"]) if volume is not None else None
