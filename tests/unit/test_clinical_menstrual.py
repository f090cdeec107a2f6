"""Menstrual association (ICHD-3 A1.1.2, A1.1.1): attacks starting on day -2 to +3 of menstruation."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_migraine.clinical.menstrual import menstrual_association, window
from tests.conftest import examples

PROPERTY = settings(max_examples=examples(200), deadline=None)
PERIODS = [date(2026, 1, 10), date(2026, 2, 8), date(2026, 3, 9)]


def test_the_window_runs_from_day_minus_2_to_day_plus_3_with_no_day_0() -> None:
    assert window(date(2026, 3, 10)) == (date(2026, 3, 8), date(2026, 3, 12))  # -2, -1, 1, 2, 3


@pytest.mark.parametrize(("attack", "counts"), [
    (date(2026, 3, 7), False),   # day -3
    (date(2026, 3, 8), True),    # day -2
    (date(2026, 3, 10), True),   # day 1
    (date(2026, 3, 12), True),   # day +3
    (date(2026, 3, 13), False),  # day +4
], ids=["day-3", "day-2", "day1", "day+3", "day+4"])
def test_an_attack_counts_for_a_cycle_from_day_minus_2_to_day_plus_3(attack: date, counts: bool) -> None:
    [cycle] = menstrual_association([attack], [date(2026, 3, 10)]).cycles
    assert cycle.perimenstrual is counts


def test_fewer_than_three_cycles_are_not_enough_data() -> None:
    found = menstrual_association([PERIODS[0], PERIODS[1]], PERIODS[:2])
    assert found.association == "not-enough-data"
    assert found.perimenstrual_cycles == 2 and "at least 3" in found.reason


def test_two_of_three_cycles_are_menstrually_related() -> None:
    found = menstrual_association([PERIODS[0] - timedelta(days=1), PERIODS[2] + timedelta(days=2)], PERIODS)
    assert found.association == "menstrually-related"
    assert [c.perimenstrual for c in found.cycles] == [True, False, True]
    assert found.pure_menstrual  # no attack at other times: A1.1.1


def test_one_of_three_cycles_is_not_menstrually_related() -> None:
    found = menstrual_association([PERIODS[1]], PERIODS)
    assert found.association == "not-menstrually-related" and not found.pure_menstrual


def test_attacks_at_other_times_make_it_menstrually_related_but_not_pure() -> None:
    mid_cycle = date(2026, 1, 25)
    found = menstrual_association([PERIODS[0], PERIODS[1], mid_cycle], PERIODS)
    assert found.association == "menstrually-related"
    assert found.attacks_at_other_times == 1 and not found.pure_menstrual
    assert found.as_dict()["pure_menstrual"] is False


def test_attacks_before_the_first_recorded_cycle_are_not_counted_as_other_times() -> None:
    found = menstrual_association([date(2025, 12, 20), PERIODS[0], PERIODS[1]], PERIODS)
    assert found.attacks_at_other_times == 0


@pytest.mark.parametrize(("with_attack", "cycles", "expected"), [
    (4, 6, "menstrually-related"), (3, 6, "not-menstrually-related"), (3, 4, "menstrually-related"), (2, 4, "not-menstrually-related"),
], ids=["4-of-6", "3-of-6", "3-of-4", "2-of-4"])
def test_with_more_cycles_two_of_every_three_must_hold(with_attack: int, cycles: int, expected: str) -> None:
    periods = [date(2026, 1, 1) + timedelta(days=28 * i) for i in range(cycles)]
    found = menstrual_association(periods[:with_attack], periods)
    assert found.association == expected


def test_several_attacks_in_one_window_count_once_and_repeated_dates_are_merged() -> None:
    found = menstrual_association([PERIODS[0], PERIODS[0] + timedelta(days=1), PERIODS[0]], [*PERIODS, PERIODS[0]])
    assert len(found.cycles) == 3
    assert found.perimenstrual_cycles == 1 and len(found.cycles[0].attacks) == 2


@PROPERTY
@given(st.lists(st.integers(0, 400), max_size=30), st.lists(st.integers(0, 400), min_size=0, max_size=14))
def test_the_association_follows_the_share_of_cycles_with_an_attack(attacks: list[int], periods: list[int]) -> None:
    start = date(2026, 1, 1)
    found = menstrual_association([start + timedelta(days=a) for a in attacks], [start + timedelta(days=p) for p in periods])
    cycles = len(set(periods))
    assert len(found.cycles) == cycles
    if cycles < 3:
        assert found.association == "not-enough-data"
    else:
        share = found.perimenstrual_cycles / cycles
        assert (found.association == "menstrually-related") == (share >= 2 / 3)
    assert not found.pure_menstrual or found.attacks_at_other_times == 0


@PROPERTY
@given(st.lists(st.integers(0, 27), max_size=10))
def test_attacks_outside_every_window_never_change_the_association(extra: list[int]) -> None:
    periods = [date(2026, 1, 1) + timedelta(days=28 * i) for i in range(4)]
    base = [periods[0], periods[1], periods[2]]
    outside = [periods[0] + timedelta(days=5 + d % 18) for d in extra]  # days +6 to +23 of the first cycle
    assert menstrual_association(base + outside, periods).association == menstrual_association(base, periods).association
