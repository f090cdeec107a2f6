"""Medication overuse (ICHD-3 8.2) and the chronic pattern (ICHD-3 1.3) per calendar month."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_migraine.clinical.months import Month
from fhir_migraine.clinical.overuse import CLASS_KEYS, HeadacheDay, Intake, chronic_pattern, medication_overuse
from fhir_migraine.errors import InputError
from tests.conftest import examples

PROPERTY = settings(max_examples=examples(200), deadline=None)
NOV = Month(2026, 11)


def days_of(month: Month, drug_class: str, count: int, first: int = 1) -> list[Intake]:
    """``count`` intakes of a class on consecutive days of ``month`` from day ``first``."""
    return [Intake(date(month.year, month.month, first + i), drug_class) for i in range(count)]


def classes(intakes: list[Intake], month: Month = NOV, **kwargs: object) -> dict[str, dict[str, object]]:
    return {r.drug_class: r.as_dict() for r in medication_overuse(intakes, month, **kwargs)}  # type: ignore[arg-type]


@pytest.mark.parametrize(("drug_class", "count", "expected"), [
    ("triptan", 9, {}),
    ("triptan", 10, {"triptan": 10}),
    ("ergot", 9, {}),
    ("ergot", 10, {"ergot": 10}),
    ("opioid", 10, {"opioid": 10}),
    ("combination-analgesic", 9, {}),
    ("combination-analgesic", 10, {"combination-analgesic": 10}),
    ("simple-analgesic", 14, {}),
    ("simple-analgesic", 15, {"non-opioid-analgesic": 15}),
    ("nsaid", 14, {}),
    ("nsaid", 15, {"non-opioid-analgesic": 15}),
], ids=lambda v: str(v))
def test_each_class_is_at_risk_from_its_threshold_of_days(drug_class: str, count: int, expected: dict[str, int]) -> None:
    found = classes(days_of(NOV, drug_class, count))
    assert {name: entry["days"] for name, entry in found.items()} == expected


def test_an_entry_carries_class_days_threshold_and_consecutive_months() -> None:
    [entry] = medication_overuse(days_of(NOV, "triptan", 12), NOV)
    assert entry.as_dict() == {"class": "triptan", "days": 12, "threshold": 10, "consecutive_months": 1, "ichd3": "8.2.2",
                               "regular_over_3_months": False, "from_diary_start": True}


def test_several_intakes_on_one_day_count_as_one_day() -> None:
    intakes = days_of(NOV, "triptan", 9) * 3
    assert classes(intakes) == {}


def test_paracetamol_and_nsaids_are_one_class_counted_by_distinct_days() -> None:
    apart = days_of(NOV, "simple-analgesic", 8) + days_of(NOV, "nsaid", 7, first=20)
    assert classes(apart)["non-opioid-analgesic"]["days"] == 15
    same_days = days_of(NOV, "simple-analgesic", 14) + days_of(NOV, "nsaid", 14)
    assert classes(same_days) == {}  # 14 days, one class: neither 8.2.3 nor 8.2.6


@pytest.mark.parametrize(("triptan", "nsaid", "expected"), [
    (5, 4, {}),
    (5, 5, {"multiple": 10}),
    (9, 9, {"multiple": 18}),
    (10, 5, {"triptan": 10}),  # a class overused alone is that class, not 8.2.6
], ids=["9-days", "10-days", "18-days", "triptan-alone"])
def test_several_classes_together_on_ten_days_are_multiple(triptan: int, nsaid: int, expected: dict[str, int]) -> None:
    intakes = days_of(NOV, "triptan", triptan) + days_of(NOV, "nsaid", nsaid, first=15)
    found = classes(intakes)
    assert {name: entry["days"] for name, entry in found.items()} == expected
    if "multiple" in found:
        assert (found["multiple"]["threshold"], found["multiple"]["ichd3"]) == (10, "8.2.6")


def test_classes_taken_on_the_same_days_count_once_together() -> None:
    intakes = days_of(NOV, "triptan", 6) + days_of(NOV, "opioid", 6, first=3)  # days 1-8
    assert classes(intakes) == {}


def test_gepants_and_ditans_are_reported_as_not_covered_by_ichd3() -> None:
    found = classes(days_of(NOV, "gepant", 20) + days_of(NOV, "ditan", 2))
    assert found["gepant"]["threshold"] is None and found["gepant"]["days"] == 20
    assert found["gepant"]["consecutive_months"] is None
    assert "not covered by ICHD-3 8.2" in str(found["ditan"]["note"])


def test_preventive_and_adjunct_classes_are_not_counted() -> None:
    intakes = [i for key in ("antiemetic", "corticosteroid", "cgrp-antibody", "supplement") for i in days_of(NOV, key, 25)]
    assert classes(intakes) == {}


def test_an_unknown_class_is_refused_naming_it() -> None:
    with pytest.raises(InputError) as caught:
        medication_overuse([*days_of(NOV, "triptan", 2), Intake(date(2026, 11, 4), "caffeine")], NOV)
    [problem] = caught.value.problems
    assert problem.path == "$[2].drug_class" and "'caffeine'" in problem.message


def months_back(count: int, last: Month = NOV) -> list[Month]:
    found = [last]
    while len(found) < count:
        found.append(found[-1].previous())
    return found[::-1]


@pytest.mark.parametrize(("months", "consecutive", "regular"), [(3, 3, False), (4, 4, True), (7, 7, True)])
def test_regular_overuse_needs_more_than_three_consecutive_months(months: int, consecutive: int, regular: bool) -> None:
    intakes = [i for m in months_back(months) for i in days_of(m, "triptan", 10)]
    entry = classes(intakes, diary_start=date(2026, 1, 1))["triptan"]
    assert (entry["consecutive_months"], entry["regular_over_3_months"]) == (consecutive, regular)


def test_a_month_below_the_threshold_breaks_the_run() -> None:
    aug, sep, oct_ = months_back(4)[:3]
    intakes = days_of(aug, "triptan", 12) + days_of(sep, "triptan", 9) + days_of(oct_, "triptan", 10) + days_of(NOV, "triptan", 10)
    assert classes(intakes)["triptan"]["consecutive_months"] == 2


def test_the_run_reaching_the_first_month_of_the_diary_says_so() -> None:
    intakes = [i for m in months_back(3) for i in days_of(m, "triptan", 10)]
    assert classes(intakes)["triptan"]["from_diary_start"] is True  # the diary starts with the first intake
    assert classes(intakes, diary_start=date(2026, 9, 15))["triptan"]["from_diary_start"] is True
    assert classes(intakes, diary_start=date(2026, 6, 1))["triptan"]["from_diary_start"] is False


def test_the_run_crosses_a_new_year() -> None:
    feb = Month(2027, 2)
    intakes = [i for m in months_back(5, feb) for i in days_of(m, "ergot", 10)]
    assert [str(m) for m in months_back(5, feb)] == ["2026-10", "2026-11", "2026-12", "2027-01", "2027-02"]
    assert classes(intakes, feb)["ergot"]["consecutive_months"] == 5


def test_the_multiple_run_counts_months_whose_pooled_days_reach_ten() -> None:
    sep, oct_ = months_back(3)[:2]
    intakes = (days_of(sep, "triptan", 12)  # triptan alone that month
               + days_of(oct_, "triptan", 5) + days_of(oct_, "opioid", 5, first=10)
               + days_of(NOV, "ergot", 4) + days_of(NOV, "nsaid", 6, first=10))
    entry = classes(intakes)["multiple"]
    assert (entry["days"], entry["consecutive_months"]) == (10, 3)


@PROPERTY
@given(st.sets(st.integers(1, 30), max_size=30), st.sets(st.integers(1, 30), max_size=30),
       st.sampled_from(["triptan", "ergot", "opioid", "combination-analgesic", "nsaid", "simple-analgesic"]))
def test_overuse_is_monotone_in_days(some: set[int], more: set[int], drug_class: str) -> None:
    """Adding days of a class never removes its entry nor lowers its days."""
    def entry(days: set[int]) -> dict[str, object] | None:
        found = classes([Intake(date(2026, 11, d), drug_class) for d in days])
        name = "non-opioid-analgesic" if drug_class in ("nsaid", "simple-analgesic") else drug_class
        return found.get(name)

    threshold = 15 if drug_class in ("nsaid", "simple-analgesic") else 10
    before, after = entry(some), entry(some | more)
    assert (before is not None) == (len(some) >= threshold)
    if before is not None:
        assert after is not None and after["days"] >= before["days"]  # type: ignore[operator]


@PROPERTY
@given(st.lists(st.sets(st.integers(1, 28), max_size=28), min_size=1, max_size=8), st.integers(0, 7), st.sets(st.integers(1, 28)))
def test_more_days_in_any_month_never_shorten_a_run(months: list[set[int]], which: int, extra: set[int]) -> None:
    calendar = months_back(len(months))

    def run(days: list[set[int]]) -> int:
        intakes = [Intake(date(m.year, m.month, d), "triptan") for m, ds in zip(calendar, days, strict=True) for d in ds]
        found = classes(intakes, diary_start=date(2026, 1, 1))
        return int(found["triptan"]["consecutive_months"]) if "triptan" in found else 0  # type: ignore[call-overload]

    more = [set(ds) for ds in months]
    more[which % len(more)] |= extra
    assert run(more) >= run(months)


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 120), st.sampled_from(CLASS_KEYS)), max_size=60))
def test_every_entry_is_at_or_over_its_threshold(records: list[tuple[int, str]]) -> None:
    start = date(2026, 8, 1)
    for entry in medication_overuse([Intake(start + timedelta(days=d), c) for d, c in records], NOV):
        if entry.threshold is None:
            assert entry.drug_class in ("gepant", "ditan") and entry.days > 0
        else:
            assert entry.days >= entry.threshold
            assert entry.consecutive_months is not None and 1 <= entry.consecutive_months <= 4


def headache_days(month: Month, headache: int, migraine: int) -> list[HeadacheDay]:
    return [HeadacheDay(date(month.year, month.month, 1 + i), migraine=i < migraine) for i in range(headache)]


@pytest.mark.parametrize(("headache", "migraine", "consecutive"), [(15, 8, 1), (14, 8, 0), (15, 7, 0), (28, 28, 1)],
                         ids=["15-and-8", "14-headache-days", "7-migraine-days", "every-day"])
def test_chronic_pattern_needs_15_headache_days_with_8_of_migraine(headache: int, migraine: int, consecutive: int) -> None:
    found = chronic_pattern(headache_days(NOV, headache, migraine), NOV)
    assert (found.headache_days, found.migraine_days, found.consecutive_months) == (headache, migraine, consecutive)


@pytest.mark.parametrize(("months", "regular"), [(3, False), (4, True)])
def test_chronic_pattern_needs_more_than_three_months(months: int, regular: bool) -> None:
    records = [d for m in months_back(months) for d in headache_days(m, 16, 9)]
    found = chronic_pattern(records, NOV, diary_start=date(2026, 1, 1))
    assert (found.consecutive_months, found.regular_over_3_months, found.from_diary_start) == (months, regular, False)
    assert found.as_dict()["month"] == "2026-11"


def test_several_records_of_one_day_count_once_and_migraine_if_any_says_so() -> None:
    day = date(2026, 11, 3)
    found = chronic_pattern([HeadacheDay(day), HeadacheDay(day, migraine=True), HeadacheDay(day)], NOV)
    assert (found.headache_days, found.migraine_days) == (1, 1)


def test_an_empty_diary_has_no_run() -> None:
    found = chronic_pattern([], NOV)
    assert (found.headache_days, found.consecutive_months, found.from_diary_start) == (0, 0, False)
    assert medication_overuse([], NOV) == []


def test_the_doc_states_every_threshold_the_code_applies() -> None:
    from fhir_migraine.clinical.overuse import MULTIPLE, OVERUSE_CLASSES
    from tests.conftest import ROOT

    rows = {line.split("|")[1].strip().strip("`"): line
            for line in (ROOT / "docs" / "clinical-rules.md").read_text(encoding="utf-8").splitlines() if line.startswith("| `")}
    for cls in (*OVERUSE_CLASSES, MULTIPLE):
        assert f"≥ {cls.threshold}" in rows[cls.name] and cls.ichd3 in rows[cls.name], cls.name


def test_a_month_is_one_to_twelve() -> None:
    with pytest.raises(ValueError):
        Month(2026, 13)
    assert Month(2026, 1).previous() == Month(2025, 12) and str(Month(2026, 3)) == "2026-03"
