"""The FHIRPath subset compiled to Python (validation/fhirpath.py), against results worked out
from the FHIRPath specification (https://hl7.org/fhirpath/N1/): collections, empty propagation,
three-valued boolean logic, choice elements, dateTime comparison."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_migraine.validation.fhirpath import compile_invariant, holds

ATTACK = {
    "resourceType": "Observation",
    "effectivePeriod": {"start": "2026-12-01T09:00:00+01:00", "end": "2026-12-01T11:30:00+01:00"},
    "component": [{"code": {"text": "peak"}, "valueInteger": 7}, {"code": {"text": "aura"}, "valueBoolean": False}],
}


def evaluate(expression: str, resource: Any) -> list[Any]:
    compiled, fast = compile_invariant(expression)
    assert fast, f"{expression} is in the compiled subset"
    return compiled([resource], resource)


@pytest.mark.parametrize("expression, expected", [
    ("effective.start", ["2026-12-01T09:00:00+01:00"]),  # a choice name finds effectivePeriod
    ("component.value", [7, False]),  # arrays are flattened, each item's choice read
    ("component.value.ofType(integer)", [7]),
    ("component.value.ofType(boolean)", [False]),
    ("missing.element", []),
    ("component.exists()", [True]),
    ("missing.exists()", [False]),
    ("missing.empty()", [True]),
    ("component.where(value.ofType(integer).exists()).code.text", ["peak"]),
    ("component.all(code.exists())", [True]),
    ("missing.all(code.exists())", [True]),  # all() of an empty collection is true
    ("component.exists(value = 7)", [True]),
    ("component.exists(value = 8)", [False]),
    ("%resource.component.value.ofType(integer)", [7]),
    ("'a' = 'a'", [True]),
    ("1 < 2.5", [True]),
])
def test_paths_and_functions(expression: str, expected: list[Any]) -> None:
    assert evaluate(expression, ATTACK) == expected


@pytest.mark.parametrize("expression, expected", [
    # and: false wins over empty; or: true wins over empty; otherwise empty propagates
    ("true and true", [True]), ("true and false", [False]), ("false and missing.exists().not().not()", [False]),
    ("missing.value and false", [False]), ("missing.value and true", []),
    ("true or missing.value", [True]), ("missing.value or true", [True]), ("missing.value or false", []),
    ("false or false", [False]),
    ("true xor false", [True]), ("true xor true", [False]), ("missing.value xor true", []),
    ("false implies missing.value", [True]), ("true implies false", [False]), ("true implies missing.value", []),
    ("missing.value implies true", [True]), ("missing.value implies false", []),
    ("missing.value.not()", []), ("true.not()", [False]),
])
def test_three_valued_logic(expression: str, expected: list[Any]) -> None:
    assert evaluate(expression, ATTACK) == expected


def test_the_side_that_decides_is_enough() -> None:
    # The right side would compare a collection of two with one (an error); the left decides.
    assert evaluate("true or component.value = 7", ATTACK) == [True]
    assert evaluate("false and component.value = 7", ATTACK) == [False]
    compiled, _ = compile_invariant("component.value = 7")
    assert holds(compiled, ATTACK, ATTACK) is False, "an error breaks the invariant"


@pytest.mark.parametrize("start, end, expected", [
    ("2026-12-01T09:00:00+01:00", "2026-12-01T11:30:00+01:00", True),
    ("2026-12-01T11:30:00+01:00", "2026-12-01T09:00:00+01:00", False),
    # different offsets: compared as instants, not as text
    ("2026-12-01T09:00:00+01:00", "2026-12-01T08:30:00Z", True),
    ("2026-12-01T09:00:00-05:00", "2026-12-01T10:00:00Z", False),
    ("2026-12-01T23:30:00-10:00", "2026-12-02T08:00:00+00:00", False),
    ("2026-12-01T23:30:00-10:00", "2026-12-02T10:00:00+00:00", True),
    # fractions of a second written differently
    ("2026-12-01T09:00:00.5Z", "2026-12-01T09:00:00.25Z", False),
    ("2026-12-01T09:00:00Z", "2026-12-01T09:00:00.000Z", True),
    # mixed precision: equal as far as both go is unknown (empty), so the invariant fails
    ("2026-12-01", "2026-12-01T10:00:00Z", None),
    # a date against a dateTime: their calendar fields as written, to the shared precision
    ("2026-11-30", "2026-12-01T10:00:00Z", True),
    ("2026-12-02", "2026-12-01T10:00:00Z", False),
])
def test_date_times_compare_as_instants(start: str, end: str, expected: bool | None) -> None:
    resource = {"resourceType": "Observation", "effectivePeriod": {"start": start, "end": end}}
    result = evaluate("effective.start <= effective.end", resource)
    assert result == ([] if expected is None else [expected])


def test_outside_the_subset_fhirpathpy_evaluates() -> None:
    compiled, fast = compile_invariant("component.count() = 2")
    assert not fast
    assert holds(compiled, ATTACK, ATTACK)
