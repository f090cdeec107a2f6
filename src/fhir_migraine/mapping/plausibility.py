"""What a diary records that is possible but unlikely, said as warnings: never an error (it is the
patient's data, and it is mapped as written), never silent. Pure: checked entries in, Problems
out (each at the JSON path of what it is about); the edges return them as an OperationOutcome of
warnings, on stderr and in the API's answer.

- acute medication on a headache-free day with no attack recorded within 6 hours of it;
- more of a drug by one route within 24 hours than its label allows (``terminology.daily_maximum``);
- a route the drug's label does not give it by (for the drugs whose labels the table holds);
- an attack longer than 72 hours, attacks separated by 12 hours or less counted as one (ICHD-3
  1.4.1 status migrainosus: a debilitating attack unremitting for more than 72 hours; its note 1
  accepts remissions of up to 12 hours due to medication or sleep);
- a triptan or an ergot taken during an attack with a motor aura (their labels contraindicate them
  in hemiplegic migraine, ICHD-3 1.2.3);
- a time in the future, more than a year before the day of its entry, or more than a day after it.

Sources: docs/clinical-rules.md ("Plausibility warnings").
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate

from fhir_migraine import terminology
from fhir_migraine.errors import Problem
from fhir_migraine.inputs.diary import DiaryEntry
from fhir_migraine.inputs.orders import parse_instant
from fhir_migraine.mapping.attacks import Span, spans
from fhir_migraine.mapping.summary import ACUTE_CLASSES, low_dose_aspirin

WINDOW = timedelta(hours=6)
DAY = timedelta(hours=24)
STATUS_MIGRAINOSUS = timedelta(hours=72)
REMISSION = timedelta(hours=12)
TOO_OLD = timedelta(days=366)
#: Medication a headache-free day should not need: acute headache drugs and antiemetics.
FOR_ATTACKS = (*ACUTE_CLASSES, "antiemetic")
TRIPTAN_OR_ERGOT = ("triptan", "ergot")
MASS = {"mg": Decimal(1), "g": Decimal(1000), "ug": Decimal("0.001"), "mcg": Decimal("0.001")}


@dataclass(frozen=True)
class Placed:
    """A checked entry and the JSON path its input was read at (``$[3]``, ``$``)."""

    entry: DiaryEntry
    base: str


class Covering:
    """Attacks in order of their start, with the latest end reached so far: whether one of them
    covers an instant (give or take a margin) is a bisection, not a pass over the whole diary."""

    def __init__(self, attacks: Sequence[Span]) -> None:
        self.starts = [s.start for s in attacks]
        self.latest: list[datetime] = list(accumulate((s.end or s.start for s in attacks), max))

    def covers(self, when: datetime, margin: timedelta = timedelta(0)) -> bool:
        """Whether an attack starts at most ``margin`` after ``when`` and ends at most ``margin`` before it."""
        try:
            started = bisect_right(self.starts, when + margin)
        except OverflowError:  # at the very end of the calendar: every attack starts before
            started = len(self.starts)
        return started > 0 and when - self.latest[started - 1] <= margin


def warnings(items: Sequence[Placed], now: datetime) -> list[Problem]:
    """Every warning of the entries, in the order of the entries."""
    attacks = spans(item.entry for item in items)
    near = Covering(attacks)
    motor = Covering([s for s in attacks if "motor" in s.attack.aura])
    found: list[Problem] = []
    for item in items:
        found += _times(item, now)
        found += _medication(item, near, motor)
    found += _daily_amounts(items)
    found += _long_attacks(items, attacks)
    order = {item.base: n for n, item in enumerate(items)}
    return sorted(found, key=lambda p: (order.get(p.path.split(".")[0], 0), p.path))


def _times(item: Placed, now: datetime) -> list[Problem]:
    day = date.fromisoformat(item.entry.date)
    stamps: list[tuple[str, str]] = []
    for where, attack in item.entry.recorded_attacks():
        stamps.append((f"{where}.start", attack.start))
        if attack.end:
            stamps.append((f"{where}.end", attack.end))
    stamps += [(f".medications[{i}].taken_at", m.taken_at) for i, m in enumerate(item.entry.medications)]
    stamps += [(f".hydration[{i}].taken_at", d.taken_at) for i, d in enumerate(item.entry.hydration)]
    found = []
    for path, text in stamps:
        when = parse_instant(text)
        if when is None:
            continue
        if when > now:
            found.append(Problem(item.base + path, f"{text} is in the future"))
        elif day - when.date() > TOO_OLD:
            found.append(Problem(item.base + path, f"{text} is more than a year before the entry's day {day}"))
        elif when.date() - day > timedelta(days=1) and not path.endswith(".end"):  # an attack may run on for days
            found.append(Problem(item.base + path, f"{text} is more than a day after the entry's day {day}"))
    return found


def _medication(item: Placed, near: Covering, motor: Covering) -> list[Problem]:
    found = []
    for i, medication in enumerate(item.entry.medications):
        path = f"{item.base}.medications[{i}]"
        kind = terminology.drug_class(medication.drug)
        taken = parse_instant(medication.taken_at)
        if item.entry.headache is None and kind is not None and kind.key in FOR_ATTACKS and taken is not None \
                and not terminology.preventive(medication.drug) and not low_dose_aspirin(medication) \
                and not near.covers(taken, WINDOW):
            found.append(Problem(f"{path}.taken_at", f"{medication.drug} ({kind.display}) was taken on a headache-free "
                                                     "day with no attack recorded within 6 hours of it"))
        if kind is not None and kind.key in TRIPTAN_OR_ERGOT and taken is not None and motor.covers(taken):
                found.append(Problem(f"{path}.drug", f"{medication.drug} ({kind.display}) was taken during an attack with"
                                                     " a motor aura: triptans and ergots are contraindicated in hemiplegic"
                                                     " migraine (their labels' Contraindications; ICHD-3 1.2.3)"))
        labelled = terminology.labelled_routes(medication.drug)
        if medication.route is not None and labelled and medication.route not in labelled:
            found.append(Problem(f"{path}.route", f"{medication.drug} is not labelled for the {medication.route} route"
                                                  f" (labelled: {', '.join(sorted(labelled))})"))
    return found


def _milligrams(value: Decimal, unit: str) -> Decimal | None:
    factor = MASS.get(unit)
    return None if factor is None else value * factor


def _daily_amounts(items: Sequence[Placed]) -> list[Problem]:
    """Per drug and route, the amount taken within the 24 hours up to each dose against the labelled
    maximum in 24 hours: a warning at each dose that takes it beyond (the labels say "in a 24-hour
    period", not per calendar day)."""
    taken: dict[tuple[str, str], list[tuple[datetime, Decimal, str]]] = defaultdict(list)
    for item in items:
        for i, medication in enumerate(item.entry.medications):
            key, when = terminology.drug_key(medication.drug), parse_instant(medication.taken_at)
            amount = _milligrams(medication.dose.value, medication.dose.unit)
            if key is None or when is None or medication.route is None or amount is None:
                continue
            taken[(key, medication.route)].append((when, amount, f"{item.base}.medications[{i}].dose"))
    found = []
    for (key, route), doses in taken.items():
        doses.sort()
        most = terminology.daily_doses(key, route)
        limit = terminology.daily_maximum(key, route)
        ceiling = _milligrams(limit[0], limit[1]) if limit is not None else None
        if most is None and ceiling is None:
            continue
        first, total = 0, Decimal(0)  # the doses[first:n + 1] taken in the 24 hours up to dose n, and their sum
        for n, (when, amount, path) in enumerate(doses):
            total += amount
            while when - doses[first][0] >= DAY:
                total -= doses[first][1]
                first += 1
            if most is not None and n + 1 - first > most:
                found.append(Problem(path, f"{key}: more than the labelled {most} dose(s) by the {route} route in"
                                           f" 24 hours (the 24 hours up to {when.isoformat()})"))
            if limit is not None and ceiling is not None and total > ceiling:
                found.append(Problem(path, f"{total.normalize():f} mg of {key} by the {route} route in the 24 hours up to"
                                           f" {when.isoformat()}: more than the labelled {limit[0]:f} {limit[1]} in 24 hours"))
    return found


def _long_attacks(items: Sequence[Placed], attacks: list[Span]) -> list[Problem]:
    """Attacks over 72 hours, counting those 12 hours apart or less as one: a warning at the first
    attack of each such run."""
    base = {id(item.entry): item.base for item in items}
    found = []
    run: list[Span] = []
    end = datetime.min  # the latest end of the run

    def close() -> None:
        if run:
            if end - run[0].start > STATUS_MIGRAINOSUS:
                hours = (end - run[0].start).total_seconds() / 3600
                found.append(Problem(f"{base[id(run[0].entry)]}{run[0].path}",
                                     f"an attack of {hours:.0f} hours from {run[0].attack.start}"
                                     f"{f' (with {len(run) - 1} remission(s) of 12 hours or less)' if len(run) > 1 else ''}:"
                                     " longer than 72 hours, a status migrainosus candidate (ICHD-3 1.4.1)"))

    for span in attacks:
        if run and span.start - end > REMISSION:
            close()
            run = []
        end = max(end, span.end or span.start) if run else span.end or span.start
        run.append(span)
    close()
    return found
