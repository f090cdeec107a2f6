"""A step's declared limits as Dosage elements: maxDosePerAdministration (a Quantity) and
maxDosePerPeriod (a Ratio: the mass over the period).

Spec: https://hl7.org/fhir/R4/dosage.html (Dosage.maxDosePerPeriod, maxDosePerAdministration).
"""

from __future__ import annotations

from typing import Any

from fhir_migraine.inputs.protocols import Step


def limit_elements(step: Step) -> dict[str, Any]:
    """The Dosage's max elements from the step's ``limits`` (a bag's: its one additive's), in the
    order the Dosage lists them; empty when none are declared."""
    limits = step.limits
    if step.type == "infusion":
        found = step.bag_limits()
        limits = found[1] if found else None
    elements: dict[str, Any] = {}
    if limits is None:
        return elements
    if limits.per_period is not None:
        elements["maxDosePerPeriod"] = limits.per_period.fhir()
    if limits.per_administration is not None:
        elements["maxDosePerAdministration"] = limits.per_administration.fhir()
    return elements
