"""Careful reading of FHIR JSON that may come from anywhere: every miss is an InputError located
by its JSON path, never a KeyError or TypeError."""

from __future__ import annotations

import builtins
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_migraine.errors import InputError, Problem
from fhir_migraine.inputs.quantity import number_text


class Reader:
    """A JSON value and the path it was found at."""

    def __init__(self, value: Any, path: str = "$") -> None:
        self.value = value
        self.path = path

    def fail(self, message: str, suffix: str = "") -> InputError:
        return InputError.of([Problem(self.path + suffix, message)], "FHIR input")

    def get(self, key: str | int) -> Reader:
        """The member ``key`` (a field name or list index); InputError when missing."""
        child = self.opt(key)
        if child is None:
            label = f"[{key}]" if isinstance(key, int) else f".{key}"
            raise self.fail("is required", label)
        return child

    def opt(self, key: str | int) -> Reader | None:
        if isinstance(key, int):
            if not isinstance(self.value, list):
                raise self.fail("must be a list")
            if key >= len(self.value):
                return None
            return Reader(self.value[key], f"{self.path}[{key}]")
        if not isinstance(self.value, dict):
            raise self.fail("must be an object")
        if key not in self.value or self.value[key] is None:
            return None
        return Reader(self.value[key], f"{self.path}.{key}")

    def items(self) -> list[Reader]:
        if not isinstance(self.value, list):
            raise self.fail("must be a list")
        return [Reader(v, f"{self.path}[{i}]") for i, v in enumerate(self.value)]

    def str(self) -> str:
        if not isinstance(self.value, str):
            raise self.fail("must be a string")
        return self.value

    def int(self) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.fail("must be an integer")
        return self.value

    def bool(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.fail("must be true or false")
        return self.value

    def decimal(self) -> Decimal:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise self.fail("must be a number")
        try:
            return Decimal(str(self.value))
        except InvalidOperation:  # pragma: no cover - str of a float always parses
            raise self.fail("must be a number") from None

    def quantity_text(self) -> builtins.str:
        """A FHIR Quantity as the input contracts write it: ``"<value> <UCUM code>"``."""
        value = self.get("value").decimal()
        unit = (self.opt("code") or self.get("unit")).str()
        return f"{number_text(value)} {unit}"

    def patient(self) -> dict[builtins.str, Any]:
        """A FHIR patient reference in the input contracts' form: a reference or an identifier."""
        if self.opt("reference") is not None:
            return {"reference": self.get("reference").str()}
        ident = self.get("identifier")
        return {"identifier": {"system": ident.get("system").str(), "value": ident.get("value").str()}}
