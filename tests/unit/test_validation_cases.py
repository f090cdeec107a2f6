"""The engine on the validation corpus: valid resources have no error; each invalid one has an
error of the rule kind it breaks. The corpus spans every profile and rule kind."""

from __future__ import annotations

import pytest

from fhir_migraine.validation import default_validator
from tests.validation_cases import KINDS, PROFILES, Case, cases

CASES = cases()


def _errors(case: Case) -> list[dict]:
    outcome = default_validator().validate(case.resource, profile=case.profile)
    return [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]


def test_the_corpus_covers_every_profile_and_rule_kind() -> None:
    invalid = [c for c in CASES if not c.expected_valid]
    assert len(invalid) >= 60
    assert {c.profile_id for c in invalid} >= set(PROFILES)
    assert {c.kind for c in invalid} >= set(KINDS)
    assert {c.profile_id for c in CASES if c.expected_valid} >= set(PROFILES)


@pytest.mark.parametrize("case", [c for c in CASES if c.expected_valid], ids=lambda c: c.id)
def test_valid_resources_have_no_error(case: Case) -> None:
    assert _errors(case) == []


@pytest.mark.parametrize("case", [c for c in CASES if not c.expected_valid], ids=lambda c: c.id)
def test_each_broken_rule_is_reported_with_its_kind(case: Case) -> None:
    errors = _errors(case)
    assert errors, case.mutation
    assert case.kind in {e["details"]["text"] for e in errors}, [(e["details"]["text"], e["diagnostics"]) for e in errors]
