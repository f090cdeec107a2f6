"""Validation issues: what is wrong, where (a FHIRPath location), how bad, and the outcome."""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

SEVERITY_RANK = {"fatal": 0, "error": 1, "warning": 2, "information": 3}
# Rule kinds in the order a human should see them when several apply (most relevant first).
KIND_RANK = {
    "structure": 0, "unknown": 1, "type": 2, "cardinality": 3, "fixed": 4, "pattern": 5,
    "slicing": 6, "binding": 7, "invariant": 8, "reference": 9, "code": 10,
}


class Issue(NamedTuple):
    """One problem: severity, FHIR IssueType code, the rule kind, a message and the location.
    (A named tuple: made often, compared and hashed to drop repeats.)"""

    severity: str
    code: str
    kind: str
    message: str
    expression: str

    def fhir(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "details": {"text": self.kind},
            "diagnostics": self.message,
            "expression": [self.expression],
        }


def ranked(issues: Iterable[Issue]) -> list[Issue]:
    """Errors before warnings; within a severity, structural problems before rule problems,
    then document order (a stable sort keeps it)."""
    unique = list(dict.fromkeys(issues))
    return sorted(unique, key=lambda i: (SEVERITY_RANK[i.severity], KIND_RANK.get(i.kind, 99)))


def outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An OperationOutcome; one ``information`` issue saying all is well when there is nothing."""
    found = ranked(issues)
    if not found:
        return {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "diagnostics": "No issues found."}],
        }
    return {"resourceType": "OperationOutcome", "issue": [i.fhir() for i in found]}


def has_errors(result: dict[str, Any]) -> bool:
    return any(i.get("severity") in ("fatal", "error") for i in result.get("issue", []))
