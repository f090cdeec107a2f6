"""Values of the wrong type where the engine gathers ids or references are reported as issues,
never raised (found by the damage property test)."""

from __future__ import annotations

from fhir_migraine.validation import default_validator


def test_a_contained_resource_whose_id_is_an_array_is_an_issue_not_a_crash() -> None:
    resource = {
        "resourceType": "Observation", "status": "final", "code": {"text": "pain"},
        "contained": [{"resourceType": "Patient", "id": ["a"]}, {"resourceType": "Patient", "id": "b"}],
    }
    issues = default_validator().issues(resource)
    assert any(i.expression == "Observation.contained[0].id" and "array" in i.message for i in issues)
