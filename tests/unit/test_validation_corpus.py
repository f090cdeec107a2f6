"""The engine alone on the validation corpus (tests/validation_corpus.py), no server needed:
every valid case has no error, every invalid case an error of the rule kind it breaks."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_migraine.validation import default_validator
from tests.validation_corpus import PROFILE_IDS, RULE_KINDS, Case, cases

CASES = cases()
VALID = [c for c in CASES if c.expected_valid]
INVALID = [c for c in CASES if not c.expected_valid]


def _errors(case: Case) -> list[dict[str, Any]]:
    outcome = default_validator().validate(case.resource, profile=case.profile)
    return [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]


def _shown(errors: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(e["details"]["text"], e["expression"][0], e["diagnostics"]) for e in errors]


def test_the_corpus_has_sixty_invalid_cases_over_every_profile_and_rule_kind() -> None:
    assert len(INVALID) >= 60
    assert {c.profile_id for c in INVALID} == set(PROFILE_IDS)
    assert {c.kind for c in INVALID} >= set(RULE_KINDS)
    assert {c.profile_id for c in VALID} == set(PROFILE_IDS)


def test_every_invalid_case_says_what_it_breaks() -> None:
    assert all(c.mutation_doc and c.kind for c in INVALID)
    assert all(c.kind is None and not c.mutation_doc for c in VALID if not c.is_bundle)


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.id)
def test_a_valid_resource_has_no_error(case: Case) -> None:
    assert _shown(_errors(case)) == []


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_a_broken_rule_is_reported_with_its_kind(case: Case) -> None:
    errors = _errors(case)
    assert errors, f"no error for: {case.mutation_doc}"
    assert case.kind in {e["details"]["text"] for e in errors}, _shown(errors)
