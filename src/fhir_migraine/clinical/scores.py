"""The MIDAS and HIT-6 questionnaire scores, with their published grades.

MIDAS (Stewart et al., Neurology 2001;56(6 Suppl 1):S20-8): five questions, each a number of days
in the last 3 months (at most 92 days); the score is their sum; grade I 0-5, II 6-10, III 11-20, IV 21 or more.
HIT-6 (Kosinski et al., Qual Life Res 2003;12:963-74): six items answered never, rarely,
sometimes, very often or always, worth 6, 8, 10, 11 and 13 points; the score (36-78) is their sum;
49 or less little or no impact, 50-55 some, 56-59 substantial, 60 or more severe.
See docs/clinical-rules.md for the sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir_migraine.errors import InputError, Problem

MIDAS_QUESTIONS = 5
# "In the last 3 months": no answer can count more days than 3 months hold (92: July to September).
MIDAS_PERIOD_DAYS = 92
# Questions counted on distinct days of the period (a day missed is not also a day at work with
# productivity halved), so each pair together cannot exceed it either: (1, 2) work, (3, 4) household.
MIDAS_DISJOINT_PAIRS = ((0, 1), (2, 3))
MIDAS_QUESTION_TOPICS = (
    "days of work or school missed",
    "days at work or school with productivity reduced by half or more",
    "days without household work",
    "days with household productivity reduced by half or more",
    "days of family, social or leisure activities missed",
)
# (lowest total, grade, what the grade says), highest first
MIDAS_GRADES = ((21, "IV", "severe disability"), (11, "III", "moderate disability"),
                (6, "II", "mild disability"), (0, "I", "little or no disability"))

HIT6_ITEMS = 6
HIT6_POINTS = {"never": 6, "rarely": 8, "sometimes": 10, "very often": 11, "always": 13}
HIT6_MIN = HIT6_ITEMS * min(HIT6_POINTS.values())  # 36
HIT6_MAX = HIT6_ITEMS * max(HIT6_POINTS.values())  # 78
# (lowest total, impact), highest first
HIT6_IMPACTS = ((60, "severe impact"), (56, "substantial impact"), (50, "some impact"), (HIT6_MIN, "little or no impact"))


@dataclass(frozen=True)
class MidasScore:
    """A MIDAS total (questions 1 to 5) and its grade."""

    total: int
    grade: str
    meaning: str

    def as_dict(self) -> dict[str, Any]:
        return {"instrument": "MIDAS", "total": self.total, "grade": self.grade, "meaning": self.meaning}


@dataclass(frozen=True)
class Hit6Score:
    """A HIT-6 total and its impact category."""

    total: int
    impact: str

    def as_dict(self) -> dict[str, Any]:
        return {"instrument": "HIT-6", "total": self.total, "impact": self.impact}


def midas_grade(total: int) -> tuple[str, str]:
    """The grade of a MIDAS total and what it says."""
    if total < 0:
        raise ValueError(f"a MIDAS total is never negative ({total})")
    return next((grade, meaning) for lowest, grade, meaning in MIDAS_GRADES if total >= lowest)


def hit6_impact(total: int) -> str:
    """The impact category of a HIT-6 total."""
    if not HIT6_MIN <= total <= HIT6_MAX:
        raise ValueError(f"a HIT-6 total is {HIT6_MIN} to {HIT6_MAX}, not {total}")
    return next(impact for lowest, impact in HIT6_IMPACTS if total >= lowest)


def midas(answers: Sequence[object], *, path: str = "$.midas") -> MidasScore:
    """Score five MIDAS answers (days, 0 to 92). Every answer that is not a whole number of days
    within the 3-month period is refused, each at its own path, naming its question."""
    problems: list[Problem] = []
    if isinstance(answers, (str, bytes)) or len(answers) != MIDAS_QUESTIONS:
        count = "a text" if isinstance(answers, (str, bytes)) else f"{len(answers)} answers"
        raise InputError.of([Problem(path, f"MIDAS has {MIDAS_QUESTIONS} questions (1 to 5); got {count}")], "MIDAS questionnaire")
    days: list[int] = []
    for index, answer in enumerate(answers):
        where, question = f"{path}[{index}]", f"MIDAS question {index + 1} ({MIDAS_QUESTION_TOPICS[index]})"
        if isinstance(answer, bool) or not isinstance(answer, int):
            problems.append(Problem(where, f"{question} must be a whole number of days, not {answer!r}"))
        elif answer < 0:
            problems.append(Problem(where, f"{question} is {answer} days: it cannot be negative"))
        elif answer > MIDAS_PERIOD_DAYS:
            problems.append(Problem(where, f"{question} is {answer} days: more than the {MIDAS_PERIOD_DAYS} days of the "
                                           "3 months it asks about"))
        else:
            days.append(answer)
    if problems:
        raise InputError.of(problems, "MIDAS questionnaire")
    total = sum(days)
    grade, meaning = midas_grade(total)
    return MidasScore(total, grade, meaning)


def hit6(answers: Sequence[object], *, path: str = "$.hit6") -> Hit6Score:
    """Score six HIT-6 answers (never, rarely, sometimes, very often, always). An answer that is
    none of those is refused, at its own path, naming the item and what was given."""
    if isinstance(answers, (str, bytes)) or len(answers) != HIT6_ITEMS:
        count = "a text" if isinstance(answers, (str, bytes)) else f"{len(answers)} answers"
        raise InputError.of([Problem(path, f"HIT-6 has {HIT6_ITEMS} items; got {count}")], "HIT-6 questionnaire")
    problems: list[Problem] = []
    points: list[int] = []
    for index, answer in enumerate(answers):
        if isinstance(answer, str) and answer in HIT6_POINTS:
            points.append(HIT6_POINTS[answer])
        else:
            problems.append(Problem(f"{path}[{index}]", f"HIT-6 item {index + 1}: {answer!r} is not an answer; the answers "
                                                        f"are {', '.join(HIT6_POINTS)}"))
    if problems:
        raise InputError.of(problems, "HIT-6 questionnaire")
    total = sum(points)
    return Hit6Score(total, hit6_impact(total))
