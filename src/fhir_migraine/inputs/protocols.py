"""Infusion protocols: read (YAML or JSON), checked against the schema and the code tables,
and turned into typed records."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.errors import InputError, Problem
from fhir_migraine.inputs import schema
from fhir_migraine.inputs.limits import (
    Approval,
    LimitReader,
    Limits,
    below_plausible_minimum,
    label_excesses,
    occurrences,
    schedule_problems,
)
from fhir_migraine.inputs.quantity import DOSE, DOSE_OR_PER_KG, Quantity
from fhir_migraine.inputs.sequencing import Prn, Relation, SequencingReader, check_relations, step_length
from fhir_migraine.inputs.yaml_text import parse_yaml
from fhir_migraine.terminology import Code

INTERVAL_UNITS = ("d", "wk", "mo")
#: The ICD-10-CM codes "with status migrainosus": in the G43 subcategories that tell status
#: migrainosus the sixth character is 1 with it, 9 without (G43.011 with, G43.019 without; CDC/NCHS
#: ICD-10-CM Tabular List, G43); G43.A-G43.D have no such character. Listed, not matched by a
#: pattern, so the profile's invariant (mig-pd-1) needs no regular expression.
STATUS_MIGRAINOSUS_CODES = (
    "G43.001", "G43.011", "G43.101", "G43.111", "G43.401", "G43.411", "G43.501", "G43.511", "G43.601", "G43.611",
    "G43.701", "G43.711", "G43.801", "G43.811", "G43.821", "G43.831", "G43.901", "G43.911", "G43.E01", "G43.E11",
)
REPEAT_UNITS = ("min", "h", "d")
AGE_UNITS = ("a", "mo")


@dataclass(frozen=True)
class Drug:
    """A drug as the protocol names it, with its code (RxNorm from the table, or the step's own)."""

    name: str
    code: Code


@dataclass(frozen=True)
class Additive:
    drug: Drug
    dose: Quantity
    max_dose: Quantity | None = None
    rounding: Quantity | None = None
    limits: Limits | None = None


@dataclass(frozen=True)
class Step:
    """One step in order of administration: a bag infusion, an IV push or an injection."""

    id: str
    type: str
    route: str
    drug: Drug | None = None
    dose: Quantity | None = None
    max_dose: Quantity | None = None
    over: Quantity | None = None
    base: Drug | None = None
    volume: Quantity | None = None
    additives: tuple[Additive, ...] = ()
    rate: Quantity | None = None
    duration: Quantity | None = None
    prn: Prn | None = None
    relation: Relation | None = None
    first_dose: Quantity | None = None
    rounding: Quantity | None = None
    max_rate: Quantity | None = None
    limits: Limits | None = None
    off_label: Approval | None = None
    exceptions: dict[str, Approval] = field(default_factory=dict, compare=False)
    instructions: tuple[str, ...] = ()

    def bag_limits(self) -> tuple[Additive, Limits] | None:
        """The one additive of a bag that declares limits, with them (Dosage has one maxDosePerPeriod)."""
        for additive in self.additives:
            if additive.limits is not None:
                return additive, additive.limits
        return None

    def running_time(self, rate: Quantity | None, duration: Quantity | None) -> Quantity | None:
        """How long the bag runs at ``rate`` or for ``duration`` (in minutes), or None for a push."""
        if self.type != "infusion":
            return None
        length = step_length(None, duration, self.volume, rate)
        return Quantity(length / 60, "min").to("min") if length is not None else None

    def pace_problems(self, rate: Quantity | None, duration: Quantity | None,
                      min_duration: Quantity | None) -> list[str]:
        """Why the bag, at ``rate`` or for ``duration``, runs shorter than the protocol's
        ``min_duration`` or faster than the step's ``max_rate`` (nothing when it does neither)."""
        time = self.running_time(rate, duration)
        if time is None or self.volume is None:
            return []
        problems = []
        if min_duration is not None and time.in_base() < min_duration.in_base():
            problems.append(f"the bag runs {time.text()}, shorter than the protocol's min_duration {min_duration.text()}")
        flow = Quantity(self.volume.to("mL").value / time.to("h").value, "mL/h").to("mL/h")
        if self.max_rate is not None and flow.in_base() > self.max_rate.in_base():
            problems.append(f"the bag runs at {flow.text()}, faster than the step's max_rate {self.max_rate.text()}")
        return problems


@dataclass(frozen=True)
class AppliesTo:
    """Who a protocol is for; an order for anyone else is refused."""

    min_weight: Quantity | None = None
    max_weight: Quantity | None = None
    min_age: Quantity | None = None


@dataclass(frozen=True)
class Schedule:
    kind: str
    every: Decimal | None = None
    unit: str | None = None
    count: int = 1


@dataclass(frozen=True)
class Protocol:
    id: str
    version: str
    title: str
    intent: str
    schedule: Schedule
    steps: tuple[Step, ...]
    indication: Code | None = None
    min_duration: Quantity | None = None
    applies_to: AppliesTo = AppliesTo()
    status: str = "active"  # draft | active | retired: only an active protocol can be ordered
    priority: str | None = None  # the orders' default request priority (routine, urgent, asap, stat)
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    @property
    def canonical(self) -> str:
        return f"{terminology.CANONICAL_BASE}/PlanDefinition/{self.id}"


def with_status_migrainosus(code: Code) -> bool:
    """Whether an indication says "with status migrainosus" (ICD-10-CM G43.xx1)."""
    return code.system == terminology.ICD10CM and code.code in STATUS_MIGRAINOSUS_CODES


def parse_text(data: str | bytes) -> Any:
    """A protocol document from YAML or JSON text or its UTF-8 bytes (JSON is YAML), read
    strictly (inputs/yaml_text.py): UnreadableInput naming the path or line otherwise."""
    return parse_yaml(data, "protocol")


def load(document: Any) -> Protocol:
    """A checked protocol, or InputError listing every problem with its JSON path."""
    problems = schema.check("protocol", document)
    if problems:
        raise InputError.of(problems, "protocol")
    checker = _Checker()
    protocol = checker.protocol(document)
    if checker.problems:
        raise InputError.of(checker.problems, "protocol")
    assert protocol is not None
    return protocol


def load_text(data: str | bytes) -> Protocol:
    return load(parse_text(data))


class _Checker(SequencingReader):
    """Collects semantic problems (units, codes, duplicates, placements) while building the records."""

    schedule_kind = "once"
    repeats = Schedule("once")

    def drug(self, raw: dict[str, Any], key: str, path: str) -> Drug | None:
        name = raw[key]
        own = raw.get("code")
        if own is not None:
            system = terminology.resolve_system(own["system"])
            display = own.get("display") or name
            return Drug(name, Code(system, own["code"], display))
        code = terminology.drug(name)
        if code is None:
            self.problems.append(
                Problem(
                    f"{path}.{key}",
                    f"unknown drug {name!r}: not in the terminology table; "
                    "give its code as {system, code, display} in 'code'",
                )
            )
            return None
        return Drug(name, code)

    def max_dose(self, dose: Quantity | None, raw: Any, path: str) -> Quantity | None:
        if raw is None:
            return None
        limit = self.quantity(raw, path, DOSE)
        if dose is None or limit is None:
            return limit
        if not dose.dimension.startswith(limit.dimension):
            self.fail(path, f"{limit.text()!r} does not fit the dose {dose.text()!r}")
        elif "/" not in dose.dimension and dose.in_base() > limit.in_base():
            self.fail(path, f"is below the dose {dose.text()!r}")
        return limit

    def protocol(self, doc: dict[str, Any]) -> Protocol | None:
        self.schedule_kind = doc["schedule"]["kind"]
        schedule = self.schedule(doc["schedule"])
        self.repeats = schedule
        steps = []
        paths: dict[str, str] = {}
        seen: dict[str, int] = {}
        for i, raw in enumerate(doc["steps"]):
            path = f"$.steps[{i}]"
            if raw["id"] in seen:
                self.problems.append(
                    Problem(f"{path}.id", f"duplicate step id {raw['id']!r} (also $.steps[{seen[raw['id']]}])")
                )
            seen.setdefault(raw["id"], i)
            step = self.step(raw, path)
            if step is not None:
                steps.append(step)
                paths.setdefault(step.id, path)
        check_relations(steps, paths, protocol_step_length, self)
        min_duration = self.quantity(doc.get("min_duration"), "$.min_duration", ("time",))
        self.running_times(steps, min_duration)
        for i, step in enumerate(steps):
            self.limit_checks(step, schedule, f"$.steps[{i}]")
        return Protocol(
            id=doc["id"],
            version=doc["version"],
            title=doc["title"],
            intent=doc["intent"],
            schedule=schedule,
            steps=tuple(steps),
            indication=self.indication(doc.get("indication"), doc["intent"]),
            min_duration=min_duration,
            applies_to=self.applies_to(doc.get("applies_to", {})),
            status=doc.get("status", "active"),
            priority=doc.get("priority"),
            document=doc,
        )

    def limit_checks(self, step: Step, schedule: Schedule, path: str) -> None:
        """The schedule's doses against the step's declared limits and the drug's label."""
        doses: list[tuple[Drug, Quantity, Quantity | None, Limits | None, str]] = []
        if step.drug is not None and step.dose is not None:
            doses.append((step.drug, step.dose, step.first_dose, step.limits, path))
        for j, additive in enumerate(step.additives):
            doses.append((additive.drug, additive.dose, None, additive.limits, f"{path}.additives[{j}]"))
        for drug, dose, first, limits, where in doses:
            for key, amount in (("dose", dose), ("first_dose", first)):
                slip = below_plausible_minimum(drug.name, step.route, amount) if amount is not None else None
                if slip is not None:
                    self.fail(f"{where}.{key}", slip)
            if first is not None and first.dimension != dose.dimension:
                continue  # reported by the first dose's own check
            most = limits.per_administration if limits is not None else None
            if first is not None and most is not None and first.dimension == most.dimension:
                if first.in_base() > most.in_base():
                    self.fail(f"{where}.first_dose", f"is above the limit per administration {most.text()}")
            given = occurrences(dose, schedule, first=first)
            self.problems.extend(schedule_problems(given, limits, f"{where}.limits", drug.name))
            excesses = label_excesses(drug.name, step.route, given)
            if excesses and step.off_label is None:
                route = "IV" if step.route == "intravenous" else step.route
                said = "; ".join(e.text(drug.name, route) for e in excesses)
                self.fail(path, f"{said}. An order above the label needs 'off_label: {{reason, approved_by}}'")

    def applies_to(self, raw: dict[str, Any]) -> AppliesTo:
        path = "$.applies_to"
        low = self.quantity(raw.get("min_weight"), f"{path}.min_weight", ("mass",))
        high = self.quantity(raw.get("max_weight"), f"{path}.max_weight", ("mass",))
        if low is not None and high is not None and low.in_base() > high.in_base():
            self.fail(f"{path}.min_weight", f"{low.text()} is above max_weight {high.text()}")
        age = self.quantity(raw.get("min_age"), f"{path}.min_age", ("time",))
        if age is not None and age.unit not in AGE_UNITS:
            self.fail(f"{path}.min_age", f"an age is given in years (a) or months (mo), not {age.unit}")
        return AppliesTo(low, high, age)

    def running_times(self, steps: list[Step], min_duration: Quantity | None) -> None:
        """Each bag of the protocol runs no faster than its max_rate and no shorter than min_duration."""
        for i, step in enumerate(steps):
            where = f"$.steps[{i}].rate" if step.rate is not None else f"$.steps[{i}].duration"
            for problem in step.pace_problems(step.rate, step.duration, min_duration):
                self.fail(where, problem)

    def schedule(self, raw: dict[str, Any]) -> Schedule:
        if raw["kind"] == "once":
            return Schedule("once")
        units = INTERVAL_UNITS if raw["kind"] == "interval" else REPEAT_UNITS
        if raw["unit"] not in units:
            self.problems.append(
                Problem("$.schedule.unit", f"an {raw['kind']} schedule counts in {', '.join(units)}")
            )
        # count 9.0 is the schema's integer 9 (docs/mapping.md); Timing.repeat.count is an integer.
        return Schedule(raw["kind"], Decimal(str(raw["every"])).normalize(), raw["unit"], int(raw["count"]))

    def indication(self, raw: dict[str, Any] | None, intent: str) -> Code | None:
        if raw is None:
            if intent == "status-migrainosus":
                self.fail("$.indication", "is required for a status-migrainosus protocol: "
                          "an ICD-10-CM code with status migrainosus (e.g. G43.911)")
            return None
        system = terminology.resolve_system(raw["system"])
        code = terminology.indication(system, raw["code"])
        if code is None:
            self.problems.append(
                Problem("$.indication.code", f"{raw['code']!r} is not a known migraine indication in {raw['system']}")
            )
        elif intent == "status-migrainosus" and not with_status_migrainosus(code):
            self.fail("$.indication.code", f"{code.code!r} ({code.display}) contradicts the intent "
                      "'status-migrainosus': give an ICD-10-CM code with status migrainosus (G43.x01 or G43.x11)")
        return code

    def step(self, raw: dict[str, Any], path: str) -> Step | None:
        kind = raw["type"]
        if kind == "infusion":
            return self.infusion(raw, path)
        dose = self.quantity(raw["dose"], f"{path}.dose", DOSE_OR_PER_KG)
        max_dose = self.max_dose(dose, raw.get("max_dose"), f"{path}.max_dose")
        reader = LimitReader(self)
        return Step(
            instructions=tuple(raw.get("instructions", ())),
            id=raw["id"],
            type=kind,
            route=raw.get("route", "intravenous"),
            drug=self.drug(raw, "drug", path),
            dose=dose,
            max_dose=max_dose,
            over=self.quantity(raw.get("over"), f"{path}.over", ("time",)),
            prn=self.prn(raw.get("prn"), path, self.schedule_kind),
            relation=self.relation(raw, path),
            first_dose=self.first_dose(raw, dose, max_dose, self.repeats, path),
            rounding=self.rounding(dose, max_dose, raw.get("rounding"), f"{path}.rounding"),
            limits=reader.limits(raw.get("limits"), dose, f"{path}.limits"),
            off_label=reader.approval(raw.get("off_label")),
            exceptions=reader.exceptions(raw.get("exceptions"), f"{path}.exceptions"),
        )

    def rounding(self, dose: Quantity | None, limit: Quantity | None, raw: Any, path: str) -> Quantity | None:
        """The amount a calculated dose is rounded to: of the dose's own kind (mg for mg/kg), and
        not above the step's ceiling."""
        step = self.quantity(raw, path, DOSE)
        if step is not None and dose is not None and dose.dimension.split("/")[0] != step.dimension:
            self.fail(path, f"{step.text()!r} does not fit the dose {dose.text()!r}")
        elif step is not None and limit is not None and limit.dimension == step.dimension:
            if step.in_base() > limit.in_base():
                self.fail(path, f"{step.text()} is above the maximum dose {limit.text()}")
        return step

    def infusion(self, raw: dict[str, Any], path: str) -> Step:
        if ("rate" in raw) == ("duration" in raw):
            self.fail(path, "an infusion needs either 'rate' or 'duration' (not both)")
        additives: list[Additive] = []
        reader = LimitReader(self)
        names: set[str] = set()
        for j, add in enumerate(raw.get("additives", [])):
            apath = f"{path}.additives[{j}]"
            key = terminology.normalize_name(add["drug"])
            if key in names:
                self.fail(f"{apath}.drug", f"{add['drug']!r} appears twice in this bag")
            names.add(key)
            dose = self.quantity(add["dose"], f"{apath}.dose", DOSE_OR_PER_KG)
            drug = self.drug(add, "drug", apath)
            limit = self.max_dose(dose, add.get("max_dose"), f"{apath}.max_dose")
            rounding = self.rounding(dose, limit, add.get("rounding"), f"{apath}.rounding")
            limits = reader.limits(add.get("limits"), dose, f"{apath}.limits")
            if limits is not None and any(a.limits is not None for a in additives):
                self.fail(f"{apath}.limits", "only one additive of a bag may declare limits "
                                             "(a Dosage has one maxDosePerPeriod)")
            if drug is not None and dose is not None:
                additives.append(Additive(drug, dose, limit, rounding, limits))
        return Step(
            instructions=tuple(raw.get("instructions", ())),
            id=raw["id"],
            type="infusion",
            route="intravenous",
            base=self.drug(raw["base"], "drug", f"{path}.base"),
            volume=self.quantity(raw["base"]["volume"], f"{path}.base.volume", ("volume",)),
            additives=tuple(additives),
            rate=self.quantity(raw.get("rate"), f"{path}.rate", ("volume/time",)),
            duration=self.quantity(raw.get("duration"), f"{path}.duration", ("time",)),
            prn=self.prn(raw.get("prn"), path, self.schedule_kind),
            relation=self.relation(raw, path),
            off_label=reader.approval(raw.get("off_label")),
            exceptions=reader.exceptions(raw.get("exceptions"), f"{path}.exceptions"),
            max_rate=self.quantity(raw.get("max_rate"), f"{path}.max_rate", ("volume/time",)),
        )


def protocol_step_length(step: Step) -> Decimal | None:
    """Seconds one administration of a step takes as the protocol writes it (None: unknown)."""
    return step_length(step.over, step.duration, step.volume, step.rate)

