"""Orders: a protocol applied to one patient, checked and resolved into the doses to give."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.errors import InputError, Problem
from fhir_migraine.inputs import schema
from fhir_migraine.inputs.protocols import AGE_UNITS, Drug, Protocol, Step
from fhir_migraine.inputs.quantity import DOSE_OR_PER_KG, Collector, Quantity
from fhir_migraine.inputs.sequencing import offsets, step_length

WEIGHT_UNITS = ("kg", "g", "[lb_av]")  # the units the body-weight profile allows
KG_STEP = Decimal("0.1")  # weights are read to 0.1 kg, as ward scales show them


def weight_in_kg(weight: Quantity) -> Quantity:
    """A body weight in kg to 0.1 kg: the figure per-kg doses are calculated with and texts show."""
    kg = weight.to("kg").value.quantize(KG_STEP, rounding=ROUND_HALF_UP).normalize()
    return Quantity(max(kg, KG_STEP), "kg")


def round_to(amount: Quantity, step: Quantity) -> Quantity:
    """``amount`` rounded half up to the nearest multiple of ``step``, in the step's unit."""
    value = amount.to(step.unit).value
    multiple = (value / step.value).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return Quantity((multiple * step.value).normalize(), step.unit)


#: Finds a protocol by id, and by version when the order names one (None: the current version).
FindProtocol = Callable[[str, str | None], Protocol | None]


def finder(found: Mapping[str, Protocol]) -> FindProtocol:
    """A FindProtocol over protocols read from files (one version of each id)."""

    def find(protocol_id: str, version: str | None = None) -> Protocol | None:
        protocol = found.get(protocol_id)
        if protocol is None or (version is not None and protocol.version != version):
            return None
        return protocol

    return find


@dataclass(frozen=True)
class Weight:
    """When the order's weight was measured, and whether it was measured or stated (each optional)."""

    measured_at: str | None = None
    source: str | None = None  # measured | stated


@dataclass(frozen=True)
class Dose:
    """A dose as ordered (possibly per kg) and as given (absolute, after the weight).

    For a per-kg dose: ``weight`` the body weight in kg it was calculated with, ``calculated`` the
    product, ``rounded`` the product rounded to the step's rounding amount (when it has one) and
    ``cap`` the ceiling that was applied (when the result was above it). ``given`` is what is left.
    """

    ordered: Quantity
    given: Quantity
    weight: Quantity | None = None
    calculated: Quantity | None = None
    rounded: Quantity | None = None
    cap: Quantity | None = None

    @property
    def per_kg(self) -> bool:
        return self.ordered.dimension.endswith("/kg")


@dataclass(frozen=True)
class ResolvedAdditive:
    drug: Drug
    dose: Dose
    max_dose: Quantity | None


@dataclass(frozen=True)
class ResolvedStep:
    """A protocol step with this order's doses, rate and duration."""

    step: Step
    sequence: int
    dose: Dose | None
    additives: tuple[ResolvedAdditive, ...]
    rate: Quantity | None
    duration: Quantity | None
    first_dose: Dose | None = None
    offset: Decimal = Decimal(0)  # seconds after the session's start (inputs/sequencing.py)

    @property
    def length(self) -> Decimal | None:
        """Seconds one administration takes with this order's rate or duration (None: unknown)."""
        return step_length(self.step.over, self.duration, self.step.volume, self.rate)


def with_offsets(steps: tuple[ResolvedStep, ...]) -> tuple[ResolvedStep, ...]:
    """The steps with their offsets from the session's start, from their placements."""
    lengths = {r.step.id: r.length for r in steps}
    found = offsets([r.step for r in steps], lambda s: lengths.get(s.id))
    return tuple(replace(r, offset=found[r.step.id]) for r in steps)


@dataclass(frozen=True)
class Order:
    """A checked order resolved against its protocol."""

    order_id: str
    protocol: Protocol
    patient: dict[str, Any]
    requester: dict[str, Any]
    start: str
    authored: str | None
    weight: Quantity | None
    steps: tuple[ResolvedStep, ...]
    age: Quantity | None = None
    weight_facts: Weight = Weight()
    encounter: dict[str, Any] | None = None
    priority: str | None = None  # the order's own, else the protocol's default
    category: str | None = None  # inpatient | outpatient | community


_FHIR_INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
)
# FHIR R4's dateTime allows offsets from -14:00 to +14:00 only (the regex of
# https://hl7.org/fhir/R4/datatypes.html#dateTime); Python would read +23:59 as well.
_FHIR_OFFSET = re.compile(r"(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$")


def parse_instant(text: str) -> datetime | None:
    """A FHIR dateTime with seconds and an offset (``2026-12-01T09:00:00Z``), or None."""
    if not _FHIR_INSTANT.match(text) or not _FHIR_OFFSET.search(text):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def instant_problem(text: str, example: str) -> str | None:
    """Why ``text`` is not a FHIR dateTime with seconds and an offset, or None when it is one."""
    if parse_instant(text) is not None:
        return None
    if _FHIR_INSTANT.match(text) and not _FHIR_OFFSET.search(text):
        return f"the UTC offset {text[-6:]} is outside -14:00 to +14:00, the offsets FHIR allows"
    return f"{text!r} is not a date-time with seconds and an offset, e.g. {example}"


def protocol_id(document: Any) -> str:
    """The protocol an order names, after the schema check (InputError otherwise)."""
    problems = schema.check("order", document)
    if problems:
        raise InputError.of(problems, "order")
    return str(document["protocol"])


def ordered_protocol(document: dict[str, Any], find_protocol: FindProtocol) -> Protocol:
    """The protocol (and version) a checked order names, if it exists and may be ordered."""
    pid, version = document["protocol"], document.get("protocol_version")
    protocol = find_protocol(pid, version)
    if protocol is None and version is not None and find_protocol(pid, None) is not None:
        raise InputError.of([Problem("$.protocol_version", f"protocol {pid!r} has no version {version!r}")], "order")
    if protocol is None:
        raise InputError.of([Problem("$.protocol", f"unknown protocol {pid!r}")], "order")
    if protocol.status != "active":
        problem = f"protocol {pid!r} version {protocol.version!r} is {protocol.status}: only active ones are ordered"
        raise InputError.of([Problem("$.protocol", problem)], "order")
    return protocol


def load(document: Any, find_protocol: FindProtocol) -> Order:
    """A checked, resolved order, or InputError listing every problem with its JSON path."""
    protocol_id(document)
    protocol = ordered_protocol(document, find_protocol)
    resolver = _Resolver(document, protocol)
    order = resolver.order()
    if resolver.problems:
        raise InputError.of(resolver.problems, "order")
    return order


class _Resolver(Collector):
    def __init__(self, doc: dict[str, Any], protocol: Protocol) -> None:
        super().__init__()
        self.doc = doc
        self.protocol = protocol
        self.weight: Quantity | None = None
        self.kg: Quantity | None = None

    def order(self) -> Order:
        doc = self.doc
        for name, example in (("start", "2026-12-01T09:00:00Z"), ("authored", "2026-11-30T16:20:00Z")):
            problem = instant_problem(doc[name], example) if name in doc else None
            if problem is not None:
                self.fail(f"$.{name}", problem)
        facts = Weight()
        if "weight" in doc:
            facts = self.body_weight(doc["weight"])
        age = self.quantity(doc.get("age"), "$.age", ("time",))
        if age is not None and age.unit not in AGE_UNITS:
            self.fail("$.age", f"an age is given in years (a) or months (mo), not {age.unit}")
        elif age is not None and age.to("a").value > 130:
            self.fail("$.age", f"{age.text()!r} is not a plausible age")
        self.applies_to(age)
        overrides = doc.get("overrides", {})
        for step_id in overrides:
            if self.protocol.step(step_id) is None:
                self.fail(f"$.overrides.{step_id}", f"protocol {self.protocol.id!r} has no step {step_id!r}")
        steps = with_offsets(tuple(
            self.step(step, i + 1, overrides.get(step.id, {})) for i, step in enumerate(self.protocol.steps)
        ))
        return Order(
            order_id=doc["order_id"],
            protocol=self.protocol,
            patient=doc["patient"],
            requester=doc["requester"],
            start=doc["start"],
            authored=doc.get("authored"),
            weight=self.weight,
            steps=steps,
            age=age,
            weight_facts=facts,
            encounter=doc.get("encounter"),
            priority=doc.get("priority", self.protocol.priority),
            category=doc.get("category"),
        )

    def body_weight(self, raw: Any) -> Weight:
        """The weight (``self.weight``): a quantity, or {quantity, measured_at, source}."""
        path, facts = "$.weight", Weight()
        if isinstance(raw, dict) and "quantity" in raw:
            path, facts = "$.weight.quantity", Weight(raw.get("measured_at"), raw.get("source"))
            raw = raw["quantity"]
            problem = instant_problem(facts.measured_at, "2026-12-01T08:30:00Z") if facts.measured_at else None
            if problem is not None:
                self.fail("$.weight.measured_at", problem)
        self.weight = self.quantity(raw, path, ("mass",))
        if self.weight is not None and self.weight.unit not in WEIGHT_UNITS:
            self.fail(path, f"a body weight is given in {', '.join(WEIGHT_UNITS)}, not {self.weight.unit}")
        elif self.weight is not None and not (0.3 <= self.weight.to("kg").value <= 500):
            self.fail(path, f"{self.weight.text()!r} is not a plausible body weight")
        elif self.weight is not None:
            self.kg = weight_in_kg(self.weight)
        return facts

    def applies_to(self, age: Quantity | None) -> None:
        """The patient is one the protocol is for (its applies_to), or the field says why not."""
        limits, name = self.protocol.applies_to, self.protocol.id
        if self.kg is not None:
            if limits.min_weight is not None and self.kg.in_base() < limits.min_weight.in_base():
                self.fail("$.weight", f"{self.kg.text()} is below the minimum weight {limits.min_weight.text()} "
                                      f"of protocol {name!r}")
            if limits.max_weight is not None and self.kg.in_base() > limits.max_weight.in_base():
                self.fail("$.weight", f"{self.kg.text()} is above the maximum weight {limits.max_weight.text()} "
                                      f"of protocol {name!r}")
        elif (limits.min_weight or limits.max_weight) and "weight" not in self.doc:
            self.fail("$.weight", f"is required: protocol {name!r} is for patients of a given weight")
        if limits.min_age is not None:
            if age is None and "age" not in self.doc:
                self.fail("$.age", f"is required: protocol {name!r} is for patients aged {limits.min_age.text()} "
                                   "or more")
            elif age is not None and age.in_base() < limits.min_age.in_base():
                self.fail("$.age", f"{age.text()} is below the minimum age {limits.min_age.text()} of protocol {name!r}")

    def dose(
        self, ordered: Quantity | None, limit: Quantity | None, rounding: Quantity | None, path: str, what: str
    ) -> Dose | None:
        """The dose to give. A per-kg dose is calculated with the weight in kg, rounded to ``rounding``
        and capped at ``limit`` (an absolute amount); any other dose above ``limit`` is refused at ``path``."""
        if ordered is None:
            return None
        if limit is not None and not ordered.dimension.startswith(limit.dimension):
            self.fail(path, f"{ordered.text()!r} does not fit the maximum dose {limit.text()!r} of {what}")
            return None
        if not ordered.dimension.endswith("/kg"):
            if limit is not None and ordered.in_base() > limit.in_base():
                self.fail(path, f"{ordered.text()} is above the maximum dose {limit.text()} of {what}")
                return None
            return Dose(ordered, ordered)
        if self.kg is None:
            if "weight" not in self.doc:
                self.fail("$.weight", f"is required: {what} is dosed per body weight ({ordered.text()})")
            return None
        unit = ordered.unit.removesuffix("/kg")
        calculated = Quantity(ordered.value * self.kg.value, unit).to(unit)
        rounded = round_to(calculated, rounding) if rounding is not None else None
        if rounding is not None and rounded is not None and rounded.value == 0:
            self.fail(path, f"{calculated.text()} rounds to nothing at the step's rounding of {rounding.text()}")
            return None
        given = rounded or calculated
        cap = limit if limit is not None and given.in_base() > limit.in_base() else None
        return Dose(ordered, cap or given, self.kg, calculated, rounded, cap)

    def step(self, step: Step, sequence: int, override: dict[str, Any]) -> ResolvedStep:
        base = f"$.overrides.{step.id}"
        applicable = {"infusion": {"additives", "rate", "duration"}}.get(step.type, {"dose"})
        for key in override:
            if key not in applicable:
                self.fail(f"{base}.{key}", f"does not apply to step {step.id!r} ({step.type})")
        if step.type != "infusion":
            raw = override.get("dose")
            ordered = self.quantity(raw, f"{base}.dose", DOSE_OR_PER_KG) if raw is not None else step.dose
            # Without an override only the weight can push a protocol dose over its maximum.
            path = f"{base}.dose" if raw is not None else "$.weight"
            if ordered is not None and step.dose is not None and raw is not None:
                if ordered.dimension.split("/")[0] != step.dose.dimension.split("/")[0]:
                    self.fail(f"{base}.dose", f"{ordered.text()!r} does not fit the step's dose {step.dose.text()!r}")
            dose = self.dose(ordered, step.max_dose, step.rounding, path, f"step {step.id!r}")
            first = self.dose(step.first_dose, step.max_dose, step.rounding, "$.weight",
                              f"the first dose of step {step.id!r}")
            return ResolvedStep(step, sequence, dose, (), None, None, first)
        return self.infusion(step, sequence, override, base)

    def infusion(self, step: Step, sequence: int, override: dict[str, Any], base: str) -> ResolvedStep:
        by_name = {terminology.normalize_name(a.drug.name): a for a in step.additives}
        wanted = override.get("additives", {})
        for name in wanted:
            if terminology.normalize_name(name) not in by_name:
                self.fail(f"{base}.additives[{name!r}]", f"step {step.id!r} has no additive {name!r}")
        given = {terminology.normalize_name(k): (k, v) for k, v in wanted.items()}
        additives = []
        for key, additive in by_name.items():
            ordered: Quantity | None = additive.dose
            path = "$.weight"
            if key in given:
                name, raw = given[key]
                path = f"{base}.additives[{name!r}]"
                ordered = self.quantity(raw, path, DOSE_OR_PER_KG)
            dose = self.dose(ordered, additive.max_dose, additive.rounding, path,
                             f"{additive.drug.name} in step {step.id!r}")
            if dose is not None:
                additives.append(ResolvedAdditive(additive.drug, dose, additive.max_dose))
        rate, duration = step.rate, step.duration
        if "rate" in override and "duration" in override:
            self.fail(base, "give either 'rate' or 'duration', not both")
        elif "rate" in override:
            rate, duration = self.quantity(override["rate"], f"{base}.rate", ("volume/time",)), None
        elif "duration" in override:
            rate, duration = None, self.quantity(override["duration"], f"{base}.duration", ("time",))
        if "rate" in override or "duration" in override:
            self.pace(step, rate, duration, f"{base}.rate" if "rate" in override else f"{base}.duration")
        return ResolvedStep(step, sequence, None, tuple(additives), rate, duration)

    def pace(self, step: Step, rate: Quantity | None, duration: Quantity | None, path: str) -> None:
        """An overridden rate or duration keeps the bag within the protocol's min_duration and the
        step's max_rate."""
        for problem in step.pace_problems(rate, duration, self.protocol.min_duration):
            self.fail(path, problem)
