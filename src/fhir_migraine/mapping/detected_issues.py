"""What a pharmacist would flag in an order, found from the drug labels' limits: a delivery
faster than the label allows (a warning and a DetectedIssue, unless the protocol declares an
approved exception for the step) and approved off-label use (a DetectedIssue the
MedicationRequest points to through ``detectedIssue``).

Codes: HL7 v3 ActCode, the DetectedIssue.code example binding of R4
(https://hl7.org/fhir/R4/valueset-detectedissue-category.html): ``DOSE`` "Dosage problem",
``DOSEH`` "High Dose Alert". Spec: https://hl7.org/fhir/R4/detectedissue.html
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.identifiers import ORDER_ISSUE_SYSTEM, issue_value
from fhir_migraine.inputs.limits import Approval, label_excesses, occurrences, parse_rate
from fhir_migraine.inputs.orders import Order, ResolvedStep
from fhir_migraine.inputs.quantity import Quantity, number_text, parse_quantity
from fhir_migraine.mapping.fhir import Resource, full_url, identifier, profile, subject
from fhir_migraine.mapping.narrative import with_text
from fhir_migraine.terminology import Code

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DOSAGE_PROBLEM = Code(ACT_CODE, "DOSE", "Dosage problem")
HIGH_DOSE = Code(ACT_CODE, "DOSEH", "High Dose Alert")
ROUTE_TEXT = {"intravenous": "IV", "subcutaneous": "SC", "intramuscular": "IM"}


@dataclass(frozen=True)
class Finding:
    """One thing to flag about one step of an order."""

    step: int  # index in order.steps (and in the MedicationRequests)
    step_id: str
    rule: str  # "rate" or "off-label"
    code: Code
    severity: str  # DetectedIssue.severity: high | moderate | low
    detail: str
    approval: Approval | None = None

    @property
    def warns(self) -> bool:
        """A finding nobody approved: it is also returned as an OperationOutcome warning."""
        return self.approval is None


def findings(order: Order) -> list[Finding]:
    """Every finding of an order, in step order (rate before off-label within a step)."""
    found: list[Finding] = []
    for index, resolved in enumerate(order.steps):
        step = resolved.step
        if "rate" not in step.exceptions:
            for detail, ratio in rate_problems(resolved):
                severity = "high" if ratio > 2 else "moderate"
                found.append(Finding(index, step.id, "rate", DOSAGE_PROBLEM, severity, detail))
        if step.off_label is not None:
            found.append(_off_label(index, order, resolved, step.off_label))
    return found


def _per_minute(amount: Quantity, minutes: Decimal) -> Decimal:
    return amount.in_base() / minutes


def _rate_text(per_minute_base: Decimal, unit: Quantity, per: Quantity) -> str:
    """A base-unit-per-minute rate written in the label's unit (``62 mg/min``, ``9 g/h``)."""
    value = per_minute_base * per.in_base() / unit.in_base() * unit.value
    shown = value.quantize(Decimal("0.01")).normalize() if value >= 1 else value.quantize(Decimal("0.0001")).normalize()
    period = per.unit if per.value == 1 else per.text()
    return f"{number_text(shown)} {unit.unit}/{period}"


def _doses(resolved: ResolvedStep) -> list[tuple[str, Quantity, Quantity | None, str]]:
    """(drug, amount given, time it is given over, how) of a push or each additive of a bag."""
    step = resolved.step
    if step.type != "infusion":
        if step.drug is None or resolved.dose is None:
            return []
        how = f"{step.type} over {step.over.text()}" if step.over is not None else step.type
        return [(step.drug.name, resolved.dose.given, step.over, how)]
    assert step.volume is not None
    if resolved.duration is not None:
        over, how = resolved.duration, f"in {step.volume.text()} over {resolved.duration.text()}"
    elif resolved.rate is not None:
        running = step.running_time(resolved.rate, None)
        assert running is not None  # an infusion with a volume and a rate
        over = Quantity(running.value.quantize(Decimal("0.01")).normalize(), "min")
        how = f"in {step.volume.text()} at {resolved.rate.text()} (over {over.text()})"
    else:
        return []
    return [(a.drug.name, a.dose.given, over, how) for a in resolved.additives]


def rate_problems(resolved: ResolvedStep) -> list[tuple[str, Decimal]]:
    """Each labelled rate a step goes beyond: the detail naming both rates, and how many times
    the labelled rate it is (a push with no time is counted as far beyond)."""
    step = resolved.step
    found: list[tuple[str, Decimal]] = []
    route = ROUTE_TEXT[step.route]
    for drug, amount, over, how in _doses(resolved):
        label = terminology.administration_limits(drug, step.route)
        if label is None or "/" in amount.dimension:
            continue
        source = label["source"]
        given = f"{drug} {amount.text()} {route} {how}"
        if "max_rate" in label:
            most, per = parse_rate(label["max_rate"])
            if most.dimension != amount.dimension:
                continue
            allowed = _per_minute(most, per.in_base())
            if over is None:
                found.append((f"{given} with no time to give it over; label: at most {label['max_rate']} "
                              f"({source})", Decimal(10)))
            elif (actual := _per_minute(amount, over.in_base())) > allowed:
                text = _rate_text(actual, most, per)
                found.append((f"{given} = {text}; label: at most {label['max_rate']} ({source})", actual / allowed))
        if "min_over" in label:
            least = parse_quantity(label["min_over"], dimensions=("time",))
            if over is None or over.in_base() < least.in_base():
                said = "" if over is not None else " with no time to give it over"
                ratio = least.in_base() / over.in_base() if over is not None else Decimal(10)
                found.append((f"{given}{said}; label: over at least {least.text()} ({source})", ratio))
    return found


def _off_label(index: int, order: Order, resolved: ResolvedStep, approval: Approval) -> Finding:
    step = resolved.step
    excesses = []
    first = resolved.first_dose.given if resolved.first_dose is not None else None
    for drug, amount, _, _ in _doses(resolved):
        given = occurrences(amount, order.protocol.schedule, first=first if step.type != "infusion" else None)
        excesses += [e.text(drug, ROUTE_TEXT[step.route]) for e in label_excesses(drug, step.route, given)]
    said = "; ".join(excesses) if excesses else "use outside the drug's label"
    detail = f"Off-label, approved by {approval.approved_by}: {approval.reason}. {said}"
    code = HIGH_DOSE if excesses else DOSAGE_PROBLEM
    return Finding(index, step.id, "off-label", code, "moderate", detail, approval)


CODE_TEXT = {"off-label": "Above the labelled dose, approved off-label", "rate": "Administration rate above the label"}


def to_fhir_detected_issue(order: Order, finding: Finding, request: Resource, authored: str) -> Resource:
    """The DetectedIssue of a finding, implicating the step's MedicationRequest (its urn:uuid)."""
    issue: Resource = {
        "resourceType": "DetectedIssue",
        "meta": profile("migraine-detected-issue"),
        "identifier": [identifier(ORDER_ISSUE_SYSTEM, issue_value(order.order_id, finding.step_id, finding.rule))],
        "status": "final",
        "code": {"coding": [finding.code.coding()], "text": CODE_TEXT[finding.rule]},
        "severity": finding.severity,
        "patient": subject(order.patient),
        "identifiedDateTime": authored,
        "implicated": [{"reference": full_url(request["identifier"][0])}],
        "detail": finding.detail,
    }
    if finding.approval is not None:
        # The approval is how the issue was handled: the mitigation's action, by whom.
        issue["mitigation"] = [{
            "action": {"text": f"Approved off-label use: {finding.approval.reason}"},
            "date": authored,
            "author": {"display": finding.approval.approved_by},
        }]
    return with_text(issue)


def warnings_outcome(found: list[Finding], entries: dict[int, int]) -> Resource | None:
    """The OperationOutcome of the unapproved findings (severity warning), each at its
    MedicationRequest in the Bundle (``entries``: step index -> entry index); None when none."""
    issues = [
        {
            "severity": "warning",
            "code": "business-rule",
            "details": {"coding": [f.code.coding()], "text": f.detail},
            "diagnostics": f.detail,
            "expression": [f"Bundle.entry[{entries[f.step]}].resource.dosageInstruction[0]"],
        }
        for f in found
        if f.warns
    ]
    return {"resourceType": "OperationOutcome", "issue": issues} if issues else None


def detected_issue_reference(issue: Resource) -> dict[str, Any]:
    return {"reference": full_url(issue["identifier"][0])}
