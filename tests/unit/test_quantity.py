"""Quantities: text and object forms, UCUM units, dimensions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fhir_migraine.inputs.quantity import DOSE, Quantity, QuantityError, parse_quantity


@pytest.mark.parametrize(
    ("raw", "value", "unit"),
    [
        ("2 g", "2", "g"),
        ("2.50 g", "2.5", "g"),
        ({"value": 2, "unit": "g"}, "2", "g"),
        ({"value": 0.5, "unit": "mg"}, "0.5", "mg"),
        ("1000 mcg", "1000", "ug"),
        ("20 mEq", "20", "meq"),
        ("10mg", "10", "mg"),
    ],
)
def test_quantities_are_read_into_value_and_ucum_unit(raw, value: str, unit: str) -> None:
    quantity = parse_quantity(raw, dimensions=DOSE)
    assert quantity == Quantity(Decimal(value), unit)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("ten mg", "cannot read"),
        ("10 mgs", "unknown unit"),
        ("-1 mg", "greater than zero"),
        ("0 mg", "greater than zero"),
        ("10 mL", "is a volume"),
        ({"value": True, "unit": "mg"}, "numeric"),
        ({"value": 1}, "string '<number> <unit>' or an object"),
        ([1, "mg"], "string '<number> <unit>' or an object"),
        ("1.0000001 mg", "too many digits"),
    ],
)
def test_bad_quantities_say_what_is_wrong(raw, words: str) -> None:
    with pytest.raises(QuantityError, match=words.replace("(", r"\(")):
        parse_quantity(raw, dimensions=DOSE)


def test_fhir_quantity_carries_the_ucum_system_and_code() -> None:
    assert Quantity(Decimal("2.5"), "g").fhir() == {
        "value": 2.5,
        "unit": "g",
        "system": "http://unitsofmeasure.org",
        "code": "g",
    }


def test_conversion_between_units_of_one_dimension() -> None:
    assert Quantity(Decimal("180"), "[lb_av]").to("kg").text() == "81.646627 kg"
    assert Quantity(Decimal("1.5"), "g").to("mg").text() == "1500 mg"
