"""MIDAS and HIT-6: totals, every grade and impact boundary, and the refusals, each naming its answer."""

from __future__ import annotations

from itertools import combinations_with_replacement

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_migraine.clinical.scores import HIT6_POINTS, hit6, hit6_impact, midas, midas_grade
from fhir_migraine.errors import InputError
from tests.conftest import examples

PROPERTY = settings(max_examples=examples(200), deadline=None)


@pytest.mark.parametrize(("total", "grade"), [
    (0, "I"), (5, "I"), (6, "II"), (10, "II"), (11, "III"), (20, "III"), (21, "IV"), (450, "IV"),
], ids=lambda v: str(v))
def test_midas_grades_change_exactly_at_their_boundaries(total: int, grade: str) -> None:
    answers = [min(total, 90), *[0] * 4]
    rest = total - answers[0]
    for i in range(1, 5):
        answers[i] = min(rest, 90)
        rest -= answers[i]
    score = midas(answers)
    assert (score.total, score.grade) == (total, grade)


def test_midas_total_is_the_sum_of_questions_one_to_five() -> None:
    score = midas([1, 2, 3, 4, 5])
    assert score.as_dict() == {"instrument": "MIDAS", "total": 15, "grade": "III", "meaning": "moderate disability"}


def test_a_midas_answer_of_92_days_is_the_most_the_period_allows() -> None:
    assert midas([92, 0, 0, 0, 0]).total == 92


def test_a_midas_answer_above_92_days_is_refused_naming_its_question() -> None:
    with pytest.raises(InputError) as caught:
        midas([0, 0, 93, 0, 0])
    [problem] = caught.value.problems
    assert problem.path == "$.midas[2]"
    assert "MIDAS question 3" in problem.message and "93 days" in problem.message and "92 days" in problem.message


@pytest.mark.parametrize(("answer", "words"), [
    (-1, "cannot be negative"), (2.5, "whole number of days"), (True, "whole number of days"), ("3", "whole number of days"),
], ids=["negative", "fraction", "boolean", "text"])
def test_a_midas_answer_that_is_not_a_count_of_days_is_refused(answer: object, words: str) -> None:
    with pytest.raises(InputError) as caught:
        midas([0, answer, 0, 0, 0], path="$.questionnaire")
    [problem] = caught.value.problems
    assert problem.path == "$.questionnaire[1]" and words in problem.message


def test_every_wrong_midas_answer_is_reported_at_once() -> None:
    with pytest.raises(InputError) as caught:
        midas([100, 0, -2, 0, 93])
    assert [p.path for p in caught.value.problems] == ["$.midas[0]", "$.midas[2]", "$.midas[4]"]


@pytest.mark.parametrize("answers", [[0, 0, 0, 0], [0] * 6, "00000"], ids=["four", "six", "text"])
def test_midas_needs_exactly_five_answers(answers: object) -> None:
    with pytest.raises(InputError, match="MIDAS questionnaire") as caught:
        midas(answers)  # type: ignore[arg-type]
    assert "5 questions" in caught.value.problems[0].message


def answers_for(total: int) -> list[str]:
    """Six HIT-6 answers that add up to ``total``."""
    for combo in combinations_with_replacement(HIT6_POINTS, 6):
        if sum(HIT6_POINTS[a] for a in combo) == total:
            return list(combo)
    raise AssertionError(f"no six answers make {total}")


@pytest.mark.parametrize(("total", "impact"), [
    (36, "little or no impact"), (49, "little or no impact"), (50, "some impact"), (55, "some impact"),
    (56, "substantial impact"), (59, "substantial impact"), (60, "severe impact"), (78, "severe impact"),
], ids=lambda v: str(v))
def test_hit6_impact_changes_exactly_at_its_boundaries(total: int, impact: str) -> None:
    score = hit6(answers_for(total))
    assert (score.total, score.impact) == (total, impact)


def test_hit6_all_never_is_the_minimum_and_all_always_the_maximum() -> None:
    assert hit6(["never"] * 6).total == 36
    assert hit6(["always"] * 6).as_dict() == {"instrument": "HIT-6", "total": 78, "impact": "severe impact"}


def test_hit6_answers_are_worth_their_published_points() -> None:
    assert hit6(["never", "rarely", "sometimes", "very often", "always", "never"]).total == 6 + 8 + 10 + 11 + 13 + 6


@pytest.mark.parametrize("answer", ["often", "Never", "", None, 10], ids=["often", "capitalised", "empty", "none", "number"])
def test_an_unknown_hit6_answer_is_refused_naming_it(answer: object) -> None:
    answers: list[object] = ["never"] * 6
    answers[3] = answer
    with pytest.raises(InputError) as caught:
        hit6(answers)
    [problem] = caught.value.problems
    assert problem.path == "$.hit6[3]"
    assert "HIT-6 item 4" in problem.message and repr(answer) in problem.message and "very often" in problem.message


def test_hit6_needs_exactly_six_answers() -> None:
    with pytest.raises(InputError) as caught:
        hit6(["never"] * 5)
    assert "6 items" in caught.value.problems[0].message


def test_totals_outside_the_instruments_ranges_have_no_grade() -> None:
    with pytest.raises(ValueError):
        hit6_impact(35)
    with pytest.raises(ValueError):
        hit6_impact(79)
    with pytest.raises(ValueError):
        midas_grade(-1)


@PROPERTY
@given(st.lists(st.sampled_from(sorted(HIT6_POINTS)), min_size=6, max_size=6))
def test_hit6_total_is_always_between_36_and_78(answers: list[str]) -> None:
    score = hit6(answers)
    assert 36 <= score.total <= 78
    assert score.total == sum(HIT6_POINTS[a] for a in answers)


@PROPERTY
@given(st.lists(st.sampled_from(sorted(HIT6_POINTS)), min_size=6, max_size=6), st.integers(0, 5))
def test_a_more_frequent_hit6_answer_never_lowers_the_impact(answers: list[str], item: int) -> None:
    order = list(HIT6_POINTS)
    levels = ["little or no impact", "some impact", "substantial impact", "severe impact"]
    before = hit6(answers)
    worse = list(answers)
    worse[item] = order[min(order.index(answers[item]) + 1, len(order) - 1)]
    after = hit6(worse)
    assert after.total >= before.total
    assert levels.index(after.impact) >= levels.index(before.impact)


@PROPERTY
@given(st.lists(st.integers(0, 90), min_size=5, max_size=5), st.integers(0, 4), st.integers(0, 90))
def test_more_midas_days_never_lower_the_grade(answers: list[int], question: int, more: int) -> None:
    before = midas(answers)
    raised = list(answers)
    raised[question] = min(90, raised[question] + more)
    after = midas(raised)
    assert after.total == sum(raised)
    assert ["I", "II", "III", "IV"].index(after.grade) >= ["I", "II", "III", "IV"].index(before.grade)
