"""Calendar months, and the run of consecutive months that meet a rule, ending at a given month."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, order=True)
class Month:
    """One calendar month (``2026-11``)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1 to 12, not {self.month}")

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class Run:
    """How many consecutive months, ending at (and counting) the month asked, meet a rule; and
    whether the run reaches the first month the diary covers, so that it may be longer in truth."""

    months: int
    from_diary_start: bool


def consecutive(meets: Callable[[Month], bool], month: Month, first: Month | None) -> Run:
    """The run of months from ``month`` back, each meeting the rule, none before ``first`` (the
    first month the diary covers; ``None``: the diary holds nothing, so no month is covered)."""
    count = 0
    current = month
    while first is not None and current >= first and meets(current):
        count += 1
        current = current.previous()
    return Run(count, first is not None and count > 0 and current < first)
