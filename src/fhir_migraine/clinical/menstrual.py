"""Whether attacks cluster around menstruation: ICHD-3 appendix A1.1.2 (menstrually related
migraine without aura) and A1.1.1 (pure menstrual migraine without aura).

Day 1 is the first day of menstruation and the day before it is day -1; there is no day 0. For
each recorded cycle, an attack that starts on day -2 to +3 (the two days before day 1, day 1, and
the two days after) counts. Attacks are menstrually related when that holds in at least two of
every three recorded cycles, over at least three cycles; with fewer there is not enough data.
An interpretation of diary data, never a diagnosis: A1.1.2 also needs the attacks to meet 1.1.
Sources: docs/clinical-rules.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

Association = Literal["menstrually-related", "not-menstrually-related", "not-enough-data"]

MIN_CYCLES = 3
DAYS_BEFORE, DAYS_FROM = 2, 3  # day -2 to day +3


@dataclass(frozen=True)
class Cycle:
    """One recorded menstruation (its day 1) and the attacks that started on day -2 to +3."""

    day_1: date
    attacks: tuple[date, ...]

    @property
    def perimenstrual(self) -> bool:
        return bool(self.attacks)

    def as_dict(self) -> dict[str, Any]:
        return {"day_1": self.day_1.isoformat(), "attacks": [d.isoformat() for d in self.attacks],
                "perimenstrual": self.perimenstrual}


@dataclass(frozen=True)
class MenstrualReading:
    """The association, the cycles it rests on, and the attacks at other times of the cycles."""

    association: Association
    cycles: tuple[Cycle, ...]
    perimenstrual_cycles: int
    attacks_at_other_times: int
    reason: str

    @property
    def pure_menstrual(self) -> bool:
        """A1.1.1: menstrually related, and no attack at other times of the recorded cycles."""
        return self.association == "menstrually-related" and self.attacks_at_other_times == 0

    def as_dict(self) -> dict[str, Any]:
        return {"association": self.association, "pure_menstrual": self.pure_menstrual,
                "perimenstrual_cycles": self.perimenstrual_cycles, "cycles": [c.as_dict() for c in self.cycles],
                "attacks_at_other_times": self.attacks_at_other_times, "reason": self.reason}


def window(day_1: date) -> tuple[date, date]:
    """The first and last calendar dates of day -2 to day +3 of a menstruation starting on ``day_1``."""
    return day_1 - timedelta(days=DAYS_BEFORE), day_1 + timedelta(days=DAYS_FROM - 1)


def menstrual_association(attack_starts: Iterable[date], menstruation_starts: Iterable[date]) -> MenstrualReading:
    """Read the attacks' start dates against the recorded menstruation start dates (day 1 of each)."""
    attacks = sorted(set(attack_starts))
    cycles = tuple(
        Cycle(day_1, tuple(a for a in attacks if window(day_1)[0] <= a <= window(day_1)[1]))
        for day_1 in sorted(set(menstruation_starts))
    )
    perimenstrual = sum(c.perimenstrual for c in cycles)
    counted = {a for c in cycles for a in c.attacks}
    # Other times: attacks from the first cycle's day -2 on that fall in no window (before it, the
    # cycle they belong to is not recorded).
    other = sum(1 for a in attacks if cycles and a >= window(cycles[0].day_1)[0] and a not in counted)
    if len(cycles) < MIN_CYCLES:
        return MenstrualReading("not-enough-data", cycles, perimenstrual, other,
                                f"{len(cycles)} recorded cycle(s); at least {MIN_CYCLES} are needed")
    # "in at least two out of three menstrual cycles": two thirds of the recorded cycles or more.
    related = 3 * perimenstrual >= 2 * len(cycles)
    reason = f"an attack starts on day -2 to +3 in {perimenstrual} of {len(cycles)} cycles (needs two of every three)"
    return MenstrualReading("menstrually-related" if related else "not-menstrually-related", cycles, perimenstrual, other, reason)
