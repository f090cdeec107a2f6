"""Attacks as a diary records them, independent of its days: the records of one attack (an attack and
its continuations in later entries, joined by the patient's attack id) read as ONE attack, and the
days it overlaps in the patient's local time. Pure: checked entries in.

A continued attack runs from the start of its first record to the latest time any record of it
gives (an end, or the start of a later record); its features are those any record gives (the
highest intensity and disability; unilateral or pulsating when any record says so; symptoms,
aura and triggers of every record). A day is a headache day when an attack overlaps it, in the
offset the attack's start is written with; the day Observation of an entry that records no attack
of its own says so, and the patient's own answer is kept beside it (docs/mapping.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fhir_migraine.errors import Problem
from fhir_migraine.inputs.diary import Attack, DiaryEntry, patient_token
from fhir_migraine.inputs.orders import parse_instant

#: The most days one attack is counted over.
MAX_DAYS = 366


@dataclass(frozen=True)
class Span:
    """One attack: the entry of its first record and that record's path in it (``.headache``,
    ``.attacks[1]``), the attack as its records together describe it, when it began and ended (None:
    no end recorded), and how many records it has."""

    entry: DiaryEntry
    attack: Attack
    start: datetime
    end: datetime | None
    path: str = ".headache"
    records: int = 1

    @property
    def hours(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds() / 3600

    def days(self) -> list[date]:
        """The local days the attack overlaps, in the offset of its start (at most ``MAX_DAYS``: a
        longer attack is implausible, and warned of, ``mapping.plausibility``)."""
        first = self.start.date()
        if self.end is None or self.end <= self.start:
            return [first]
        try:
            last = (self.end.astimezone(self.start.tzinfo) - timedelta(microseconds=1)).date()
        except OverflowError:  # at the very ends of the calendar
            return [first]
        count = min((last - first).days + 1, MAX_DAYS, (date.max - first).days + 1)
        return [first + timedelta(days=n) for n in range(count)]


@dataclass(frozen=True)
class _Record:
    entry: DiaryEntry
    path: str
    attack: Attack
    start: datetime
    end: datetime | None


def spans(entries: Iterable[DiaryEntry]) -> list[Span]:
    """Every attack the entries record, its records joined, in the order of their start."""
    joined: dict[tuple[str, str], list[_Record]] = {}
    alone: list[list[_Record]] = []
    for entry in entries:
        for path, attack in entry.recorded_attacks():
            start = parse_instant(attack.start)
            if start is None:
                continue
            record = _Record(entry, path, attack, start, parse_instant(attack.end) if attack.end else None)
            name = attack.id or attack.continues
            if name is None:
                alone.append([record])
            else:
                joined.setdefault((patient_token(entry.patient), name), []).append(record)
    return sorted((_span(records) for records in [*alone, *joined.values()]), key=lambda s: s.start)


def _span(records: list[_Record]) -> Span:
    records = sorted(records, key=lambda r: r.start)
    first = records[0]
    if len(records) == 1:
        return Span(first.entry, first.attack, first.start, first.end, first.path)
    # The latest time any record gives: an end, or the start of a later record.
    times = [(r.end, r.attack.end) for r in records if r.end is not None and r.attack.end is not None]
    times += [(r.start, r.attack.start) for r in records[1:]]
    end, end_text = max(times, key=lambda t: t[0])
    return Span(first.entry, merged(records[0].attack, [r.attack for r in records], end_text), first.start, end,
                first.path, len(records))


def merged(first: Attack, records: Sequence[Attack], end: str) -> Attack:
    """One attack of its records: the first's start, ``end``, and the features any record gives."""
    def given(name: str) -> list[Any]:
        return [value for r in records if (value := getattr(r, name)) is not None]

    def union(name: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value for r in records for value in getattr(r, name)))

    def either(name: str, marked: Any) -> Any:
        values = given(name)
        return marked if marked in values else (values[0] if values else None)

    return Attack(
        start=first.start, end=end,
        peak_intensity=max(given("peak_intensity"), default=None),
        location=either("location", "unilateral"),
        quality=either("quality", "pulsating"),
        worse_with_activity=either("worse_with_activity", True),
        symptoms=union("symptoms"), aura=union("aura"), triggers=union("triggers"),
        disability=max(given("disability"), default=None),
        id=first.id or first.continues,
    )


def corrected_days(entries: Sequence[DiaryEntry], recorded: Iterable[DiaryEntry]) -> dict[str, Span]:
    """The entries (by id) that record no attack of their own although an attack of the same patient
    in ``recorded`` overlaps their day: the first such attack of each."""
    waiting = {(patient_token(e.patient), e.date): e.entry_id for e in entries if not e.recorded_attacks()}
    found: dict[str, Span] = {}
    if not waiting:
        return found
    for span in spans(recorded):
        key = patient_token(span.entry.patient)
        for day in span.days():
            entry_id = waiting.get((key, day.isoformat()))
            if entry_id is not None and entry_id not in found:
                found[entry_id] = span
    return found


def correction_warnings(placed: Sequence[Any], corrected: dict[str, Span]) -> list[Problem]:
    """A warning for each corrected day, at the entry's ``headache`` (``placed``: the entries with
    their JSON paths, ``plausibility.Placed``)."""
    found = []
    for item in placed:
        span = corrected.get(item.entry.entry_id)
        if span is None:
            continue
        said = "says it was headache-free" if item.entry.headache is None else "records no headache"
        name = f" {span.attack.id!r}" if span.attack.id else ""
        found.append(Problem(f"{item.base}.headache", f"entry {item.entry.entry_id!r} {said}, but attack{name} of entry "
                             f"{span.entry.entry_id!r} ({span.path[1:]}, from {span.attack.start}) overlaps"
                             f" {item.entry.date}: its day Observation says headache day"))
    return found
