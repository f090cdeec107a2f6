"""Quantities as the input contracts write them: ``"2 g"`` or ``{"value": 2, "unit": "g"}``.

Units are UCUM codes (a few common spellings such as ``mcg`` are accepted and written as UCUM).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.errors import Problem

_TEXT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([^\s\d].*?)\s*$")


class QuantityError(ValueError):
    """A quantity that cannot be read, or whose unit does not fit where it is used."""


@dataclass(frozen=True)
class Quantity:
    """A decimal value with a UCUM unit code."""

    value: Decimal
    unit: str

    @property
    def dimension(self) -> str:
        return str(terminology.units()["units"][self.unit]["dimension"])

    def in_base(self) -> Decimal:
        """The value in the base unit of its dimension (g, mL, min, mL/h, ...)."""
        return self.value * Decimal(str(terminology.units()["units"][self.unit]["factor"]))

    def to(self, unit: str) -> Quantity:
        factor = Decimal(str(terminology.units()["units"][unit]["factor"]))
        return Quantity(_tidy(self.in_base() / factor), unit)

    def text(self) -> str:
        return f"{number_text(self.value)} {self.unit}"

    def fhir(self) -> dict[str, Any]:
        """A FHIR Quantity with the UCUM system and code, and the unit as a person reads it."""
        return {
            "value": json_number(self.value),
            "unit": unit_display(self.unit),
            "system": terminology.UCUM,
            "code": self.unit,
        }


#: Units as a person reads them where the UCUM code is error-prone or unusual (the ISMP List of
#: Error-Prone Abbreviations: mcg rather than ug or µg, units rather than IU).
UNIT_DISPLAY = {"ug": "mcg", "meq": "mEq", "[iU]": "units", "[lb_av]": "lb"}


def unit_display(unit: str) -> str:
    """``mcg/kg`` for ``ug/kg``: each part of a UCUM unit code as a person reads it."""
    return "/".join(UNIT_DISPLAY.get(part, part) for part in unit.split("/"))


def _tidy(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.000001")).normalize()


def number_text(value: Decimal) -> str:
    """``2`` not ``2.0``, ``0.5`` not ``5E-1``."""
    return format(value.normalize(), "f")


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def ucum_unit(unit: str) -> str:
    """The UCUM code for a unit as written, or QuantityError naming the unit."""
    table = terminology.units()
    if unit in table["units"]:
        return unit
    if unit in table["aliases"]:
        return str(table["aliases"][unit])
    known = ", ".join(sorted(table["units"]))
    raise QuantityError(f"unknown unit {unit!r}; use a UCUM unit such as {known}")


def parse_quantity(raw: Any, *, dimensions: tuple[str, ...]) -> Quantity:
    """Read a quantity and check that its unit is of one of ``dimensions`` (e.g. ``mass``)."""
    if isinstance(raw, str):
        match = _TEXT.match(raw)
        if not match:
            raise QuantityError(f"cannot read {raw!r} as a quantity; write '<number> <unit>', e.g. '2 g'")
        number, unit = match.group(1), match.group(2)
    elif isinstance(raw, dict) and set(raw) == {"value", "unit"}:
        number, unit = raw["value"], raw["unit"]
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not isinstance(unit, str):
            raise QuantityError("a quantity object needs a numeric 'value' and a string 'unit'")
    else:
        raise QuantityError("a quantity is a string '<number> <unit>' or an object {value, unit}")
    try:
        value = Decimal(str(number))
    except InvalidOperation:
        raise QuantityError(f"cannot read {number!r} as a number") from None
    if not value.is_finite():
        raise QuantityError(f"{number!r} is not a finite number")
    if value <= 0:
        raise QuantityError(f"must be greater than zero, got {number_text(value)}")
    value = value.normalize()
    if value.as_tuple().exponent < -6 or value.adjusted() > 9:  # type: ignore[operator]
        raise QuantityError(f"{number!r} has too many digits (at most 6 decimals, below 10^10)")
    quantity = Quantity(value, ucum_unit(unit.strip()))
    if quantity.dimension not in dimensions:
        wanted = EXPECTED_WORDS.get(dimensions) or " or ".join(DIMENSION_WORDS.get(d, d) for d in dimensions)
        raise QuantityError(
            f"{quantity.text()!r} is a {DIMENSION_WORDS.get(quantity.dimension, quantity.dimension)}; "
            f"expected a {wanted}"
        )
    return quantity


DIMENSION_WORDS = {
    "mass": "mass (e.g. mg)",
    "equivalents": "amount in milliequivalents (meq)",
    "substance": "amount in millimoles (mmol)",
    "arbitrary": "amount in international units ([iU])",
    "volume": "volume (e.g. mL)",
    "mass/kg": "dose per body weight (e.g. mg/kg)",
    "equivalents/kg": "dose per body weight (meq/kg)",
    "volume/time": "rate (e.g. mL/h)",
    "time": "duration (e.g. min)",
}

DOSE = ("mass", "equivalents", "substance", "arbitrary")
DOSE_OR_PER_KG = DOSE + ("mass/kg", "equivalents/kg")
EXPECTED_WORDS = {
    DOSE: "dose (a mass such as mg, or meq, mmol, [iU])",
    DOSE_OR_PER_KG: "dose (a mass such as mg, or meq, mmol, [iU], or per body weight such as mg/kg)",
}


class Collector:
    """Collects located problems while an input is read, so all of them are reported at once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def quantity(self, raw: Any, path: str, dims: tuple[str, ...]) -> Quantity | None:
        """The quantity, or None with the problem recorded at ``path``."""
        if raw is None:
            return None
        try:
            return parse_quantity(raw, dimensions=dims)
        except QuantityError as exc:
            self.fail(path, str(exc))
            return None
