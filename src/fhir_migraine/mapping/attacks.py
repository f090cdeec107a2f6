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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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


def _records(entry: DiaryEntry) -> Iterator[tuple[_Record, str | None]]:
    """Each attack the entry records that has a start, and the id it is known by (its own or the
    one it continues; None for an attack with neither)."""
    for path, attack in entry.recorded_attacks():
        start = parse_instant(attack.start)
        if start is not None:
            yield (_Record(entry, path, attack, start, parse_instant(attack.end) if attack.end else None),
                   attack.id or attack.continues)


def spans(entries: Iterable[DiaryEntry]) -> list[Span]:
    """Every attack the entries record, its records joined, in the order of their start."""
    joined: dict[tuple[str, str], list[_Record]] = {}
    alone: list[list[_Record]] = []
    for entry in entries:
        for record, name in _records(entry):
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


def first_start(entry: DiaryEntry) -> datetime:
    """When the entry's first attack began (the latest instant when it records none): the order
    in which a diary's attack ids are checked."""
    starts = [start for _, attack in entry.recorded_attacks() if (start := parse_instant(attack.start)) is not None]
    return min(starts, default=_LAST)


_LAST = datetime.max.replace(tzinfo=UTC)


def corrected_days(entries: Sequence[DiaryEntry], recorded: Iterable[DiaryEntry]) -> dict[str, Span]:
    """The entries (by id) that record no attack of their own although an attack of the same patient
    in ``recorded`` overlaps their day (``Ledger.corrected``)."""
    ledger = Ledger()
    for entry in recorded:
        ledger.claim(entry, "$")
        ledger.add(entry)
    return ledger.corrected(entries)


class Ledger:
    """The attacks recorded so far, as a diary is read in order (a diary file, an NDJSON stream, a
    POST of a list, the chunks of an import), kept up to date entry by entry: which attack ids each
    patient has given (a record may continue only an attack an earlier entry of the same patient
    recorded; an id names one attack), and the days their attacks overlap."""

    def __init__(self) -> None:
        self.known: dict[str, dict[str, tuple[str, datetime | None]]] = {}  # patient -> id -> (entry, start)
        self.records: dict[tuple[str, str], list[_Record]] = {}  # (patient, id) -> the attack's records
        # (patient, day) -> the attack overlapping it first found, and the key of its records (None: unnamed)
        self.days: dict[tuple[str, str], tuple[tuple[str, str] | None, Span]] = {}

    def claim(self, entry: DiaryEntry, base: str) -> list[Problem]:
        """Record the attack ids the entry gives; a problem for an id another entry of the patient gave."""
        known = self.known.setdefault(patient_token(entry.patient), {})
        found = []
        for path, attack in entry.recorded_attacks():
            if attack.id is None:
                continue
            if attack.id in known:
                found.append(Problem(f"{base}{path}.id", f"attack id {attack.id!r} is already given by entry "
                                     f"{known[attack.id][0]!r}; a later record of that attack says continues"))
            else:
                known[attack.id] = (entry.entry_id, parse_instant(attack.start))
        return found

    def continuing(self, entry: DiaryEntry, base: str) -> list[Problem]:
        """What the entry's continuations contradict: an attack id no entry of the patient gives (in
        this diary, or before it), or an attack that began after the continuation."""
        known = self.known.get(patient_token(entry.patient), {})
        found = []
        for path, attack in entry.recorded_attacks():
            if attack.continues is None:
                continue
            earlier = known.get(attack.continues)
            start = parse_instant(attack.start)
            if earlier is None:
                found.append(Problem(f"{base}{path}.continues", f"continues attack {attack.continues!r}, which no "
                                     "entry of this patient in the diary records (send that entry with it)"))
            elif earlier[1] is not None and start is not None and start < earlier[1]:
                found.append(Problem(f"{base}{path}.start", f"{attack.start} is before attack {attack.continues!r}"
                                     f" began (entry {earlier[0]!r}): a continuation starts after it"))
        return found

    def add(self, entry: DiaryEntry) -> None:
        """Add the entry's attacks (its ids claimed before) and the days they overlap."""
        patient = patient_token(entry.patient)
        for record, name in _records(entry):
            if name is None:
                self._overlaps(patient, None, _span([record]))
            else:
                group = self.records.setdefault((patient, name), [])
                group.append(record)
                self._overlaps(patient, (patient, name), _span(group))

    def _overlaps(self, patient: str, key: tuple[str, str] | None, span: Span) -> None:
        for day in span.days():
            found = self.days.get((patient, day.isoformat()))
            if found is None or (key is not None and found[0] == key):
                self.days[(patient, day.isoformat())] = (key, span)

    def corrected(self, entries: Sequence[DiaryEntry]) -> dict[str, Span]:
        """The entries (by id) that record no attack of their own although an attack this ledger
        holds overlaps their day, and that attack (the first found)."""
        found = {}
        for entry in entries:
            overlapping = self.days.get((patient_token(entry.patient), entry.date))
            if overlapping is not None and not entry.recorded_attacks():
                found[entry.entry_id] = overlapping[1]
        return found

    def copy(self) -> Ledger:
        """A ledger to try a part with: this one is left as it is when the part is refused."""
        other = Ledger()
        other.known = {patient: dict(ids) for patient, ids in self.known.items()}
        other.records = {key: list(records) for key, records in self.records.items()}
        other.days = dict(self.days)
        return other

    def update(self, other: Ledger) -> None:
        """Take what ``other`` (a copy of this ledger) has learnt."""
        self.known, self.records, self.days = other.known, other.records, other.days


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
