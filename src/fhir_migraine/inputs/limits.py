"""Dose limits of a protocol step: declared ones (``limits``), the drug label's (terminology's
administration limits), approved off-label use and approved exceptions, and the sums of a
schedule's doses over a sliding period that both are checked against.

Pure: every function takes the records and returns values or located problems.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.errors import Problem
from fhir_migraine.inputs.quantity import DOSE, Collector, Quantity, QuantityError, number_text, parse_quantity

EXCEPTION_RULES = ("rate",)
_PER = re.compile(r"^\s*(-?\d+(?:\.\d+)?\s*[^\s/\d][^/]*?)\s*/\s*(\d+(?:\.\d+)?)?\s*([^\s\d][^/]*?)\s*$")


@dataclass(frozen=True)
class PerPeriod:
    """At most ``dose`` within any ``period`` (``2 mg/24 h``)."""

    dose: Quantity
    period: Quantity

    def minutes(self) -> Decimal:
        return self.period.in_base()

    def text(self) -> str:
        period = self.period.unit if self.period.value == 1 else self.period.text()
        return f"{self.dose.text()}/{period}"

    def fhir(self) -> dict[str, Any]:
        """A FHIR Ratio: the mass as numerator, the period as denominator (Dosage.maxDosePerPeriod)."""
        return {"numerator": self.dose.fhir(), "denominator": self.period.fhir()}


@dataclass(frozen=True)
class Limits:
    """A step's (or an additive's) declared limits; each optional, at least one given."""

    per_administration: Quantity | None = None
    per_period: PerPeriod | None = None
    per_course: Quantity | None = None


@dataclass(frozen=True)
class Approval:
    """Who approved a departure from the label or a labelled rule, and why."""

    reason: str
    approved_by: str


@dataclass(frozen=True)
class Occurrence:
    """One administration of a step: minutes from the start of the order, and the dose given."""

    at: Decimal
    dose: Quantity


def parse_per_period(raw: Any) -> PerPeriod:
    """``"2 mg/24 h"``, ``"6 mg/wk"`` or ``{"dose": "2 mg", "period": "24 h"}``; QuantityError otherwise."""
    if isinstance(raw, dict) and set(raw) == {"dose", "period"}:
        dose_raw, period_raw = raw["dose"], raw["period"]
    elif isinstance(raw, str) and (match := _PER.match(raw)):
        dose_raw = match.group(1)
        period_raw = f"{match.group(2) or 1} {match.group(3)}"
    else:
        raise QuantityError("a limit per period is written '<dose>/<period>', e.g. '2 mg/24 h' or '6 mg/wk'")
    dose = parse_quantity(dose_raw, dimensions=DOSE)
    period = parse_quantity(period_raw, dimensions=("time",))
    return PerPeriod(dose, period)


def parse_rate(text: str) -> tuple[Quantity, Quantity]:
    """A labelled rate such as ``20 mg/min``: the amount, and the period it is given per."""
    per = parse_per_period(text)
    return per.dose, per.period


def occurrences(dose: Quantity, schedule: Any, *, first: Quantity | None = None) -> list[Occurrence]:
    """The doses of a step, one per occurrence of the protocol's schedule, in order.

    ``first`` is a different first dose (a test dose), when the step has one; every other
    occurrence gives ``dose``. A ``once`` schedule has one occurrence; ``repeat`` and
    ``interval`` ones have ``count``, ``every`` x ``unit`` apart."""
    count = 1 if schedule.kind == "once" else int(schedule.count)
    step = Decimal(0)
    if schedule.kind != "once":
        step = Quantity(Decimal(schedule.every), schedule.unit).in_base()
    found = [Occurrence(step * i, dose) for i in range(count)]
    if first is not None and found:
        found[0] = Occurrence(found[0].at, first)
    return found


def most_in_period(doses: Sequence[Occurrence], minutes: Decimal) -> tuple[Decimal, Decimal]:
    """The largest total given within any ``minutes``-long window (half-open: a dose exactly one
    period after another falls in the next window), in the base unit, and where it starts."""
    best, start = Decimal(0), Decimal(0)
    for i, first in enumerate(doses):
        total = sum((d.dose.in_base() for d in doses[i:] if d.at < first.at + minutes), Decimal(0))
        if total > best:
            best, start = total, first.at
    return best, start


def course_total(doses: Sequence[Occurrence]) -> Decimal:
    return sum((d.dose.in_base() for d in doses), Decimal(0))


def in_unit(base_amount: Decimal, unit: str) -> Quantity:
    """An amount of the base unit (g, meq, ...) written in ``unit``."""
    return Quantity(base_amount, _base_unit(unit)).to(unit)


def _base_unit(unit: str) -> str:
    dimension = terminology.units()["units"][unit]["dimension"]
    return next(u for u, d in terminology.units()["units"].items() if d["dimension"] == dimension and d["factor"] == 1)


def _fits(dose: Quantity, limit: Quantity) -> bool:
    return dose.dimension.split("/")[0] == limit.dimension


class LimitReader:
    """Reads ``limits``, ``off_label`` and ``exceptions`` into records, collecting problems."""

    def __init__(self, collector: Collector) -> None:
        self.out = collector

    def limits(self, raw: Any, dose: Quantity | None, path: str) -> Limits | None:
        if raw is None:
            return None
        per_admin = self.out.quantity(raw.get("per_administration"), f"{path}.per_administration", DOSE)
        per_course = self.out.quantity(raw.get("per_course"), f"{path}.per_course", DOSE)
        per_period = None
        if raw.get("per_period") is not None:
            try:
                per_period = parse_per_period(raw["per_period"])
            except QuantityError as exc:
                self.out.fail(f"{path}.per_period", str(exc))
        given = {"per_administration": per_admin, "per_period": per_period.dose if per_period else None,
                 "per_course": per_course}
        ok = True
        for key, limit in given.items():
            if limit is not None and dose is not None and not _fits(dose, limit):
                self.out.fail(f"{path}.{key}", f"{limit.text()!r} does not fit the dose {dose.text()!r}")
                ok = False
        if not ok:
            return Limits(per_admin, per_period, per_course)
        order = [(k, v) for k, v in given.items() if v is not None]
        for (low_key, low), (high_key, high) in zip(order, order[1:], strict=False):
            if low.dimension != high.dimension:
                self.out.fail(f"{path}.{high_key}", f"{high.text()!r} does not fit {low_key} {low.text()!r}")
            elif low.in_base() > high.in_base():
                self.out.fail(f"{path}.{low_key}", f"{low.text()} is more than {high_key} {high.text()}: "
                                                   "the limits contradict each other")
        if per_admin is not None and dose is not None and "/" not in dose.dimension:
            if dose.in_base() > per_admin.in_base():
                self.out.fail(f"{path}.per_administration", f"is below the dose {dose.text()!r}")
        return Limits(per_admin, per_period, per_course)

    def approval(self, raw: Any) -> Approval | None:
        if raw is None:
            return None
        return Approval(raw["reason"].strip(), raw["approved_by"].strip())

    def exceptions(self, raw: Any, path: str) -> dict[str, Approval]:
        found: dict[str, Approval] = {}
        for i, item in enumerate(raw or []):
            if item["rule"] in found:
                self.out.fail(f"{path}[{i}].rule", f"the exception for {item['rule']!r} is declared twice")
            found[item["rule"]] = Approval(item["reason"].strip(), item["approved_by"].strip())
        return found


def schedule_problems(doses: Sequence[Occurrence], limits: Limits | None, path: str, what: str) -> list[Problem]:
    """Where a schedule's doses go beyond the declared per-period or per-course limit."""
    problems: list[Problem] = []
    if limits is None or not doses or "/" in doses[0].dose.dimension:
        return problems  # a per-kg dose is summed when an order gives the weight
    if limits.per_period is not None and limits.per_period.dose.dimension == doses[0].dose.dimension:
        total, start = most_in_period(doses, limits.per_period.minutes())
        if total > limits.per_period.dose.in_base():
            amount = in_unit(total, limits.per_period.dose.unit).text()
            problems.append(Problem(f"{path}.per_period", (
                f"the schedule gives {amount} of {what} within {limits.per_period.period.text()} "
                f"(from {_offset(start)}), more than {limits.per_period.text()}")))
    if limits.per_course is not None and limits.per_course.dimension == doses[0].dose.dimension:
        total = course_total(doses)
        if total > limits.per_course.in_base():
            amount = in_unit(total, limits.per_course.unit).text()
            problems.append(Problem(f"{path}.per_course", (
                f"the schedule gives {amount} of {what} in {len(doses)} doses, more than {limits.per_course.text()} "
                "per course")))
    return problems


def _offset(minutes: Decimal) -> str:
    if minutes == 0:
        return "the first dose"
    hours = minutes / 60
    return f"{number_text(hours)} h after the first dose"


@dataclass(frozen=True)
class LabelExcess:
    """A regimen above a labelled per-period limit: what the schedule gives and what the label allows."""

    given: str
    limit: str
    source: str

    def text(self, drug: str, route: str) -> str:
        return f"{drug} {route}: {self.given}; label: at most {self.limit} ({self.source})"


def label_excesses(drug: str, route: str, doses: Sequence[Occurrence]) -> list[LabelExcess]:
    """The labelled per-period maxima of a drug and route that a schedule's doses go beyond."""
    label = terminology.administration_limits(drug, route)
    if label is None or not doses or "/" in doses[0].dose.dimension:
        return []
    found = []
    for text in label.get("per_period", []):
        limit = parse_per_period(text)
        if limit.dose.dimension != doses[0].dose.dimension:
            continue
        total, _ = most_in_period(doses, limit.minutes())
        if total > limit.dose.in_base():
            given = f"{in_unit(total, limit.dose.unit).text()} within {limit.period.text()}"
            found.append(LabelExcess(given, limit.text(), str(label["source"])))
    return found


def below_plausible_minimum(drug: str, route: str, dose: Quantity) -> str | None:
    """Why a dose looks like a decimal slip (below a tenth of the smallest labelled dose), or None."""
    label = terminology.administration_limits(drug, route)
    if label is None or "plausible_minimum" not in label or "/" in dose.dimension:
        return None
    minimum = parse_quantity(label["plausible_minimum"], dimensions=DOSE)
    if minimum.dimension == dose.dimension and dose.in_base() < minimum.in_base():
        return (f"{dose.text()} of {drug} is below the plausible minimum {minimum.text()} "
                "(a tenth of the smallest labelled dose): check the decimal point")
    return None
