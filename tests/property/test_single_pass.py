"""The generated single pass (validation/codegen.py) and the closures it falls back to must find
the same issues: on every resource of the validation corpus, and on resources damaged at random
(a value dropped, nulled, replaced, wrapped in an array or taken out of one, an element added)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_migraine.validation.engine import Validator
from tests.validation_corpus import Case, cases

CASES = cases()
SINGLE = Validator.load()
REFERENCE = Validator.load(single_pass=False)


def _same(resource: Any, profile: str | None) -> None:
    found = SINGLE.issues(resource, profile=profile)
    expected = REFERENCE.issues(resource, profile=profile)
    assert set(found) == set(expected)
    assert len(found) == len(expected)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_single_pass_finds_what_the_closures_find(case: Case) -> None:
    _same(case.resource, case.profile)


def test_the_corpus_is_checked_by_the_generated_code() -> None:
    validator = Validator.load()
    validator.issues(CASES[0].resource, profile=CASES[0].profile)
    assert validator.program.namespace, "the generated checks were written"
    assert any(name.startswith("check_") for name in validator.program.namespace)


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, as the keys and indexes that lead to it."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _places(item, (*path, index))
    return found


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", " x", "a", "2026-02-30", "#x"]))
REPLACEMENTS = st.one_of(SCALARS, st.just({}), st.just([]), st.just({"foo": 1}), st.just([None]))


def _damage(resource: dict[str, Any], place: tuple[Any, ...], how: str, replacement: Any) -> None:
    *parents, last = place
    holder: Any = resource
    for step in parents:
        holder = holder[step]
    if how == "drop" and isinstance(holder, dict):
        del holder[last]
    elif how == "wrap":
        holder[last] = [holder[last]]
    elif how == "unwrap" and isinstance(holder[last], list) and holder[last]:
        holder[last] = holder[last][0]
    elif how == "twice" and isinstance(holder[last], list) and holder[last]:
        holder[last].append(copy.deepcopy(holder[last][0]))
    elif how == "add" and isinstance(holder[last], dict):
        holder[last]["valueFoo" if replacement is None else "unknownThing"] = replacement
    else:
        holder[last] = replacement


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_resources_get_the_same_issues_both_ways(data: st.DataObject) -> None:
    case = data.draw(st.sampled_from([c for c in CASES if not c.is_bundle]))
    resource = copy.deepcopy(case.resource)
    places = [p for p in _places(resource) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        place = data.draw(st.sampled_from(places))
        how = data.draw(st.sampled_from(["drop", "wrap", "unwrap", "twice", "add", "replace"]))
        try:
            _damage(resource, place, how, data.draw(REPLACEMENTS))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this place
    _same(resource, case.profile)


def test_a_fixed_codeable_concept_that_picked_a_slice_is_still_checked_whole() -> None:
    """A slice told apart by one coding of a fixed CodeableConcept: the look-up that found the
    slice saw that coding only, so the fixed value (nothing besides it) is checked all the same."""
    from fhir_migraine.validation.compile import compile_profile

    definition = {"url": "urn:test:fixed-slice", "type": "Observation", "differential": {"element": [
        {"id": "Observation.component", "path": "Observation.component",
         "slicing": {"discriminator": [{"type": "value", "path": "code"}], "rules": "open"}},
        {"id": "Observation.component:a", "path": "Observation.component", "sliceName": "a", "min": 1, "max": "1"},
        {"id": "Observation.component:a.code", "path": "Observation.component.code",
         "fixedCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "1-8"}]}},
    ]}}
    profiles = {**SINGLE.profiles, definition["url"]: compile_profile(definition, {})}
    component = {"code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}, {"system": "urn:x", "code": "y"}]},
                 "valueString": "v"}
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "component": [component]}
    for single_pass in (True, False):
        validator = Validator(profiles, SINGLE.code_systems, single_pass, SINGLE.known_codings)
        found = [(i.kind, i.expression) for i in validator.issues(resource, profile=definition["url"])]
        assert found == [("fixed", "Observation.component[0].code")]
