"""An order's doses against the limits: once an override or the weight has set a dose the
protocol did not fix, it is checked as the protocol's own doses were when it loaded (plausible
minimum, declared ``limits`` over the schedule, the label's per-period maxima unless the step
is approved off-label)."""

from __future__ import annotations

from fhir_migraine.errors import Problem
from fhir_migraine.inputs.limits import (
    Limits,
    below_plausible_minimum,
    label_excesses,
    occurrences,
    schedule_problems,
)
from fhir_migraine.inputs.orders import Dose, Order, ResolvedStep
from fhir_migraine.inputs.protocols import Drug, Step


def _doses(resolved: ResolvedStep) -> list[tuple[Drug, Dose, Limits | None, str]]:
    step = resolved.step
    base = f"$.overrides.{step.id}"
    found = []
    if step.drug is not None and resolved.dose is not None:
        found.append((step.drug, resolved.dose, step.limits, f"{base}.dose"))
    limits = {a.drug.name: a.limits for a in step.additives}
    for additive in resolved.additives:
        found.append((additive.drug, additive.dose, limits.get(additive.drug.name),
                      f"{base}.additives[{additive.drug.name!r}]"))
    return found


def _protocol_dose(step: Step, drug: Drug) -> object:
    if step.drug is drug:
        return step.dose
    return next((a.dose for a in step.additives if a.drug is drug), None)


def order_limit_problems(order: Order) -> list[Problem]:
    """Problems of the doses this order sets (by override or weight), located at the override, or
    at ``$.weight`` for a per-kg dose."""
    problems: list[Problem] = []
    for resolved in order.steps:
        step = resolved.step
        for drug, dose, limits, path in _doses(resolved):
            if dose.given == _protocol_dose(step, drug):
                continue  # the protocol's own dose: checked when the protocol loaded
            where = "$.weight" if dose.per_kg and dose.ordered == _protocol_dose(step, drug) else path
            slip = below_plausible_minimum(drug.name, step.route, dose.given)
            if slip is not None:
                problems.append(Problem(where, slip))
            if limits is not None and limits.per_administration is not None:
                most = limits.per_administration
                if most.dimension == dose.given.dimension and dose.given.in_base() > most.in_base():
                    problems.append(Problem(where, f"{dose.given.text()} of {drug.name} is above the step's limit "
                                                   f"of {most.text()} per administration"))
            first = resolved.first_dose.given if resolved.first_dose is not None and drug is step.drug else None
            given = occurrences(dose.given, order.protocol.schedule, first=first)
            problems += [Problem(where, f"{p.message} (limits of step {step.id!r})")
                         for p in schedule_problems(given, limits, where, drug.name)]
            if step.off_label is None:
                problems += [Problem(where, f"{e.given} of {drug.name} is above the label's {e.limit} ({e.source}); "
                                            f"step {step.id!r} is not approved off-label")
                             for e in label_excesses(drug.name, step.route, given)]
    return problems
