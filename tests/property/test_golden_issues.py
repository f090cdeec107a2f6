"""The engine reports exactly the issues kept in tests/data/validation/golden.json: on every case
of the validation corpus, and on the fixed set of damaged resources (tests/validation_golden.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fhir_migraine.validation.engine import Validator
from tests.validation_corpus import cases
from tests.validation_golden import DAMAGED, GOLDEN, damaged, shown

EXPECTED = json.loads(GOLDEN.read_text(encoding="utf-8"))
CASES = {case.id: case for case in cases()}
VALIDATOR = Validator.load()


def test_the_golden_file_covers_the_corpus_and_the_damaged_resources() -> None:
    assert set(EXPECTED["corpus"]) == set(CASES)
    assert len(EXPECTED["damaged"]) == DAMAGED


@pytest.mark.parametrize("case_id", sorted(EXPECTED["corpus"]))
def test_a_corpus_case_gets_its_golden_issues(case_id: str) -> None:
    case = CASES[case_id]
    assert shown(VALIDATOR.issues(case.resource, profile=case.profile)) == EXPECTED["corpus"][case_id]


@pytest.mark.parametrize("number", range(len(EXPECTED["damaged"])))
def test_a_damaged_resource_gets_its_golden_issues(number: int) -> None:
    entry: dict[str, Any] = EXPECTED["damaged"][number]
    case = CASES[entry["case"]]
    resource = damaged(case.resource, entry["damage"])
    assert shown(VALIDATOR.issues(resource, profile=case.profile)) == entry["issues"]
