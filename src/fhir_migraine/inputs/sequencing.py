"""When each step of a protocol starts: ``before``/``after`` another step, "as needed" rules and a
first dose, read and checked when the protocol loads; the offset of every step from the start
of the session, computed for an order (its rates and durations) or for the protocol alone.

A step placed ``before: {step: dhe, by: 30 min}`` starts 30 minutes before the start of ``dhe``;
``after: {step: valproate, by: 60 min, from: end}`` 60 minutes after the end of ``valproate``.
Steps with no placement start with the session. The earliest step starts at the order's
``start``; every other step keeps its offset from it at every occurrence of the schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.inputs.quantity import DOSE_OR_PER_KG, Collector, Quantity
from fhir_migraine.terminology import Code

# Units a first dose's schedule may count in: the second occurrence is one period later, and a
# month has no fixed length.
FIXED_PERIOD_UNITS = ("min", "h", "d", "wk")


@dataclass(frozen=True)
class Relation:
    """A step placed ``before`` or ``after`` another step's start or end, by an offset (none: at once)."""

    kind: str  # before | after
    step: str
    by: Quantity | None = None
    edge: str = "start"  # start | end

    @property
    def relationship(self) -> str:
        """The FHIR R4 action-relationship-type code: before-start, after-end, ..."""
        return f"{self.kind}-{self.edge}"


@dataclass(frozen=True)
class Prn:
    """"As needed": free text, or a coded reason with a minimum interval, a maximum count and a
    pain-score condition (``when: {pain_at_least: 4}``)."""

    text: str | None = None
    reason: str | None = None
    code: Code | None = None
    min_interval: Quantity | None = None
    max_count: int | None = None
    pain_at_least: int | None = None

    @property
    def structured(self) -> bool:
        """Written as an object (a reason, limits or a condition), not as free text alone."""
        return self.reason is not None or self.max_count is not None or self.pain_at_least is not None


class SequencingReader(Collector):
    """Reads the placement (``before``/``after``), ``prn`` and ``first_dose`` of a step."""

    def relation(self, raw: dict[str, Any], path: str) -> Relation | None:
        given = [k for k in ("before", "after") if k in raw]
        if len(given) == 2:
            self.fail(f"{path}.after", "a step is placed either 'before' or 'after' another step, not both")
            return None
        if not given:
            return None
        kind = given[0]
        spec = raw[kind]
        by = self.quantity(spec.get("by"), f"{path}.{kind}.by", ("time",))
        return Relation(kind, spec["step"], by, spec.get("from", "start"))

    def prn(self, raw: Any, path: str, schedule_kind: str) -> Prn | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            return Prn(text=raw)
        code = None
        reason = raw.get("reason")
        if reason is not None:
            code = terminology.prn_reason(reason)
            if code is None:
                known = ", ".join(terminology.prn_reason_names())
                self.fail(f"{path}.prn.reason", f"unknown reason {reason!r}; known reasons: {known}")
        interval = self.quantity(raw.get("min_interval"), f"{path}.prn.min_interval", ("time",))
        count = raw.get("max_count")
        if ("min_interval" in raw or count is not None) and schedule_kind != "once":
            key = "min_interval" if "min_interval" in raw else "max_count"
            self.fail(f"{path}.prn.{key}", "applies to a protocol given once: a repeated schedule sets the step's timing")
        elif "min_interval" in raw and count is None:
            self.fail(f"{path}.prn.min_interval", "needs 'max_count': how many doses at most")
        elif count is not None and count > 1 and "min_interval" not in raw:
            self.fail(f"{path}.prn.max_count", "more than one dose needs 'min_interval': how far apart at least")
        when = raw.get("when") or {}
        return Prn(
            text=raw.get("text"),
            reason=reason,
            code=code,
            min_interval=interval,
            max_count=int(count) if count is not None else None,
            pain_at_least=int(when["pain_at_least"]) if "pain_at_least" in when else None,
        )

    def first_dose(self, raw: dict[str, Any], dose: Quantity | None, max_dose: Quantity | None,
                   schedule: Any, path: str) -> Quantity | None:
        if "first_dose" not in raw:
            return None
        where = f"{path}.first_dose"
        first = self.quantity(raw["first_dose"], where, DOSE_OR_PER_KG)
        if first is None:
            return None
        if schedule.count < 2:
            self.fail(where, "a first dose needs a schedule of two or more doses")
        elif schedule.unit not in FIXED_PERIOD_UNITS:
            self.fail(where, f"a first dose needs a schedule counted in {', '.join(FIXED_PERIOD_UNITS)}")
        if dose is not None and first.dimension != dose.dimension:
            self.fail(where, f"{first.text()!r} does not fit the step's dose {dose.text()!r}")
        elif max_dose is not None and first.dimension == max_dose.dimension and first.in_base() > max_dose.in_base():
            self.fail(where, f"is above the maximum dose {max_dose.text()}")
        return first


def check_relations(steps: Sequence[Any], paths: dict[str, str], length: Callable[[Any], Decimal | None],
                    collector: Collector) -> None:
    """Problems of the placements: an unknown or the same step, a cycle, the end of a step whose
    length is unknown (an injection, a push without ``over``)."""
    by_id = {s.id: s for s in steps}
    for step in steps:
        relation = step.relation
        if relation is None:
            continue
        where = f"{paths[step.id]}.{relation.kind}"
        target = by_id.get(relation.step)
        if relation.step == step.id:
            collector.fail(f"{where}.step", f"step {step.id!r} cannot be placed relative to itself")
        elif target is None:
            collector.fail(f"{where}.step", f"no step {relation.step!r} in this protocol")
        elif relation.edge == "end" and length(target) is None:
            collector.fail(f"{where}.from", f"step {relation.step!r} has no duration ('over', 'duration' or "
                                            "'rate'), so its end is not known")
    reported: set[str] = set()
    for step in steps:
        chain = [step.id]
        current = step
        while current.relation is not None and current.relation.step in by_id and current.relation.step != current.id:
            current = by_id[current.relation.step]
            if current.id in chain:
                cycle = chain[chain.index(current.id):]
                if not reported & set(cycle):
                    first = by_id[cycle[0]]
                    assert first.relation is not None
                    loop = " -> ".join([*cycle, cycle[0]])
                    collector.fail(f"{paths[first.id]}.{first.relation.kind}.step", f"the steps' placements form a cycle: {loop}")
                    reported |= set(cycle)
                break
            chain.append(current.id)


def seconds(quantity: Quantity) -> Decimal:
    """A duration in seconds (the unit table's base for time is the minute)."""
    return quantity.in_base() * 60


def offsets(steps: Sequence[Any], length: Callable[[Any], Decimal | None]) -> dict[str, Decimal]:
    """Each step's start in whole seconds after the session's start (the earliest step at 0);
    the placements must have been checked (no cycle, known steps)."""
    by_id = {s.id: s for s in steps}
    found: dict[str, Decimal] = {}

    def offset(step: Any) -> Decimal:
        if step.id in found:
            return found[step.id]
        relation = step.relation
        value = Decimal(0)
        if relation is not None and relation.step in by_id:
            target = by_id[relation.step]
            value = offset(target)
            if relation.edge == "end":
                value += length(target) or Decimal(0)
            by = seconds(relation.by) if relation.by is not None else Decimal(0)
            value += by if relation.kind == "after" else -by
        found[step.id] = value
        return value

    for step in steps:
        offset(step)
    earliest = min(found.values(), default=Decimal(0))
    return {k: (v - earliest).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) for k, v in found.items()}


def step_length(over: Quantity | None, duration: Quantity | None, volume: Quantity | None,
                rate: Quantity | None) -> Decimal | None:
    """How long one administration takes, in seconds: ``over``/``duration``, or volume / rate."""
    if over is not None:
        return seconds(over)
    if duration is not None:
        return seconds(duration)
    if volume is not None and rate is not None:
        hours = volume.to("mL").value / rate.to("mL/h").value
        return hours * 3600
    return None

