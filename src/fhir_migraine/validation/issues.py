"""Validation issues: what is wrong, where (a FHIRPath location), how bad, which rule of which
profile element found it, and the OperationOutcome of a list of them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

SEVERITY_RANK = {"fatal": 0, "error": 1, "warning": 2, "information": 3}
# Kinds shown (details.text) in the order a human should see them when several apply (most relevant first).
KIND_RANK = {
    "structure": 0, "unknown": 1, "type": 2, "cardinality": 3, "fixed": 4, "pattern": 5,
    "slicing": 6, "binding": 7, "invariant": 8, "reference": 9, "code": 10,
}
# Where an issue came from, in an OperationOutcome issue (an extension of this project).
PROVENANCE_URL = "https://fhir-migraine.org/fhir/StructureDefinition/issue-source"


class Issue(NamedTuple):
    """One problem: severity, FHIR IssueType code, the kind shown (details.text), a message and the
    location; then where it came from: the rule kind (rules.KINDS: min, max, fixed, ...), an
    invariant's key, the profile url (None: the base spec) and the element id. (A named tuple:
    made often, compared and hashed to drop repeats.)"""

    severity: str
    code: str
    kind: str
    message: str
    expression: str
    rule: str = ""
    key: str | None = None
    profile: str | None = None
    element: str | None = None

    def fhir(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "details": {"text": self.kind},
            "diagnostics": self.message,
            "expression": [self.expression],
        }
        source = [{"url": name, "valueString": value} for name, value in
                  (("rule", self.rule), ("key", self.key), ("profile", self.profile), ("element", self.element)) if value]
        if source:
            found["extension"] = [{"url": PROVENANCE_URL, "extension": source}]
        return found


def path_text(path: Any) -> str:
    """A location as FHIRPath text. The generated checks carry a location as it is built, a
    pair (parent, step) with a step such as ``.code`` or an index, and write it out only when an
    issue needs it: ``(("Observation", ".component"), 2)`` is ``Observation.component[2]``."""
    if type(path) is str:
        return path
    steps = []
    while type(path) is tuple:
        path, step = path
        steps.append(step if type(step) is str else f"[{step}]")
    steps.append(path)
    return "".join(reversed(steps))


def ranked(issues: Iterable[Issue]) -> list[Issue]:
    """Errors before warnings; within a severity, structural problems before rule problems,
    then document order (a stable sort keeps it). An issue said twice (same severity, code, kind,
    message and location) is kept once, with where it was first found."""
    unique: dict[tuple[str, ...], Issue] = {}
    for issue in issues:
        unique.setdefault(issue[:5], issue)
    return sorted(unique.values(), key=lambda i: (SEVERITY_RANK[i.severity], KIND_RANK.get(i.kind, 99)))


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
