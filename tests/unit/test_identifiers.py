"""The business identifiers: each build/parse pair round-trips, malformed values parse to None,
ids that no input could carry are refused when building."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fhir_migraine import identifiers
from fhir_migraine.identifiers import (
    DiaryKey,
    diary_value,
    order_value,
    parse_diary_value,
    parse_order_value,
    parse_step_value,
    step_value,
)


def test_the_systems_are_distinct_and_under_the_project_namespace() -> None:
    assert len(set(identifiers.SYSTEMS)) == 4
    assert all(s.startswith("https://fhir-migraine.org/fhir/sid/") for s in identifiers.SYSTEMS)


@pytest.mark.parametrize("order_id", ["c0a8-01", "A", "x.y_z-9", "a" * 64], ids=["uuid-like", "one-char", "punctuated", "longest"])
def test_an_order_value_round_trips(order_id: str) -> None:
    assert order_value(order_id) == order_id
    assert parse_order_value(order_value(order_id)) == order_id


def test_a_step_value_is_order_slash_step_and_round_trips() -> None:
    assert step_value("ord-1", "fluids") == "ord-1/fluids"
    assert parse_step_value(step_value("ord-1", "anti-emetic-2")) == ("ord-1", "anti-emetic-2")


@pytest.mark.parametrize(
    ("part", "index", "expected"),
    [
        ("day", None, "e1"),
        ("attack", None, "e1/attack"),
        ("infusion", None, "e1/infusion"),
        ("medication", 0, "e1/medication/0"),
        ("hydration", 12, "e1/hydration/12"),
        ("medication-outcome", 3, "e1/medication/3/outcome"),
    ],
    ids=["day", "attack", "infusion", "medication", "hydration", "medication-outcome"],
)
def test_a_diary_value_has_the_documented_shape_and_round_trips(part: identifiers.DiaryPart, index: int | None, expected: str) -> None:
    assert diary_value("e1", part, index) == expected
    assert parse_diary_value(expected) == DiaryKey("e1", part, index)


MALFORMED_ORDER = ["", "-starts-with-dash", "has space", "a/b", "a" * 65, "é"]


@pytest.mark.parametrize("value", MALFORMED_ORDER, ids=["empty", "leading-dash", "space", "slash", "too-long", "non-ascii"])
def test_a_malformed_order_value_parses_to_none(value: str) -> None:
    assert parse_order_value(value) is None


MALFORMED_STEP = ["ord-1", "ord-1/", "/fluids", "ord-1/Fluids", "ord-1/fluids/2", "ord 1/fluids", "ord-1/flu--ids"]


@pytest.mark.parametrize("value", MALFORMED_STEP, ids=["no-step", "empty-step", "empty-order", "upper-case-step",
                                                       "extra-part", "space-in-order", "double-dash"])
def test_a_malformed_step_value_parses_to_none(value: str) -> None:
    assert parse_step_value(value) is None


MALFORMED_DIARY = ["", "e1/", "e1/attack/1", "e1/medication", "e1/medication/x", "e1/medication/01",
                   "e1/hydration/-1", "e1/day", "e1/notes", "e 1/attack", "e1/hydration/0/outcome", "e1/medication/outcome",
                   "e1/medication/0/result"]


@pytest.mark.parametrize("value", MALFORMED_DIARY, ids=["empty", "trailing-slash", "numbered-attack", "unnumbered-medication",
                                                        "letter-index", "leading-zero", "negative", "day-spelled-out",
                                                        "unknown-part", "space-in-entry", "outcome-of-a-drink",
                                                        "outcome-without-index", "unknown-suffix"])
def test_a_malformed_diary_value_parses_to_none(value: str) -> None:
    assert parse_diary_value(value) is None


@pytest.mark.parametrize("value", [None, 3, ["e1"]], ids=["none", "number", "list"])
def test_a_value_that_is_not_text_parses_to_none(value: Any) -> None:
    assert parse_order_value(value) is None
    assert parse_step_value(value) is None
    assert parse_diary_value(value) is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: order_value("a/b"), "order_id"),
        (lambda: step_value("ord-1", "Fluids"), "step id"),
        (lambda: step_value("bad id", "fluids"), "order_id"),
        (lambda: diary_value("e/1"), "entry_id"),
        (lambda: diary_value("e1", "medication"), "index"),
        (lambda: diary_value("e1", "attack", 2), "index"),
        (lambda: diary_value("e1", "hydration", -1), "index"),
        (lambda: diary_value("e1", "medication-outcome"), "index"),
    ],
    ids=["order-with-slash", "step-upper-case", "order-with-space", "entry-with-slash", "medication-without-index",
         "attack-with-index", "negative-index", "outcome-without-index"],
)
def test_building_from_an_id_no_input_can_carry_is_a_clear_error(build: Callable[[], str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_unmapping_reports_a_diary_observation_whose_identifier_does_not_parse() -> None:
    from fhir_migraine.errors import InputError
    from fhir_migraine.mapping.unmap_diary import entries_from_bundle

    odd = {"resourceType": "Observation", "identifier": [{"system": identifiers.DIARY_SYSTEM, "value": "e1/notes"}]}
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": odd}]}
    problems: list[dict[str, Any]] = []
    assert entries_from_bundle(bundle, problems) == []
    assert problems == [{"entry_id": "e1/notes", "problem": "its identifier is not one this project gives"}]
    with pytest.raises(InputError, match="e1/notes"):
        entries_from_bundle(bundle)


def test_unmapping_refuses_a_step_identifier_of_another_order() -> None:
    from fhir_migraine.errors import InputError
    from fhir_migraine.mapping.reader import Reader
    from fhir_migraine.mapping.unmap_orders import _step_id

    request = {"identifier": [{"system": identifiers.ORDER_STEP_SYSTEM, "value": step_value("ord-2", "fluids")}]}
    assert _step_id(Reader(request), "ord-2") == "fluids"
    with pytest.raises(InputError, match="does not belong to order 'ord-1'"):
        _step_id(Reader(request), "ord-1")
