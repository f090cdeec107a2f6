"""MIDAS and HIT-6 answers of a diary entry through the mapping: the score Observation's total and
grade at every boundary of the published rules, derived from the QuestionnaireResponse, and the
answers read back exactly."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from fhir_migraine import operations
from fhir_migraine.inputs.diary_files import Located

HIT6_POINTS = {"never": 6, "rarely": 8, "sometimes": 10, "very often": 11, "always": 13}


def entry(**answers: Any) -> dict[str, Any]:
    return {"entry_id": "sc-1", "patient": {"reference": "Patient/9"}, "date": "2026-11-15", "headache": None, **answers}


def score(document: dict[str, Any], profile: str) -> tuple[int, str, dict[str, Any]]:
    bundle = operations.map_diary([Located(document)])
    resources = [e["resource"] for e in bundle["entry"]]
    found = next(r for r in resources if r.get("meta", {}).get("profile", [""])[0].endswith(profile))
    response = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse")
    assert found["derivedFrom"] == [{"reference": response["fullUrl"]}]
    grade = found["component"][0]["valueCodeableConcept"]["coding"][0]["code"]
    return found["valueInteger"], grade, bundle


def midas_with_total(total: int) -> dict[str, int]:
    return {"q1": total // 2, "q2": 0, "q3": total - total // 2, "q4": 0, "q5": 0}


@pytest.mark.parametrize(("total", "grade"), [(0, "i"), (5, "i"), (6, "ii"), (10, "ii"), (11, "iii"), (20, "iii"),
                                              (21, "iv"), (90, "iv")])
def test_midas_totals_grade_as_the_published_bands(total: int, grade: str) -> None:
    found_total, found_grade, _ = score(entry(midas=midas_with_total(total)), "diary-midas-score")
    assert (found_total, found_grade) == (total, f"midas-grade-{grade}")


def hit6_with_total(total: int) -> list[str]:
    for answers in itertools.combinations_with_replacement(HIT6_POINTS, 6):
        if sum(HIT6_POINTS[a] for a in answers) == total:
            return list(answers)
    raise AssertionError(f"no six answers make {total}")


@pytest.mark.parametrize(("total", "impact"), [(36, "little-or-no"), (49, "little-or-no"), (50, "some"), (55, "some"),
                                               (56, "substantial"), (59, "substantial"), (60, "severe"), (78, "severe")])
def test_hit6_totals_band_as_the_published_rules(total: int, impact: str) -> None:
    answers = hit6_with_total(total)
    found_total, found_impact, _ = score(entry(hit6={f"q{i + 1}": a for i, a in enumerate(answers)}), "diary-hit6-score")
    assert (found_total, found_impact) == (total, f"hit6-{impact}-impact")


def test_the_answers_come_back_exactly() -> None:
    document = entry(midas={"q1": 2, "q2": 3, "q3": 1, "q4": 4, "q5": 2},
                     hit6={"q1": "never", "q2": "always", "q3": "rarely", "q4": "very often", "q5": "sometimes", "q6": "never"})
    bundle = operations.map_diary([Located(document)])
    assert operations.unmap(bundle)["diary"] == [document]
