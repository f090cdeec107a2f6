"""The base FHIR R4 structure, compiled once from the ``fhir.resources.R4B`` models: for each
resource and datatype, its elements with their types, whether they repeat, whether they are
required, and which choice ``[x]`` they belong to. Validating walks the JSON with these tables;
no model is instantiated per resource.

Primitive formats are the regular expressions of https://hl7.org/fhir/R4/datatypes.html.
"""

from __future__ import annotations

import calendar
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import fhir.resources.R4B as r4b

from fhir_migraine.validation.base_codes import BASE_CODES
from fhir_migraine.validation.fhirpath import compile_invariant, holds
from fhir_migraine.validation.issues import Issue
from fhir_migraine.validation.rules import issue

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TZ = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_DATE = _YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"
PRIMITIVE_PATTERNS = {
    "code": r"[^\s]+( [^\s]+)*",
    "id": r"[A-Za-z0-9\-\.]{1,64}",
    "date": _DATE,
    "dateTime": _YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?" + _TZ + r")?)?)?",
    "instant": _YEAR + r"-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?" + _TZ,
    "time": r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?",
    "oid": r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
    "uuid": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "uri": r"\S*",
    "url": r"\S*",
    "canonical": r"\S*",
    "base64Binary": r"(\s*([0-9a-zA-Z\+/=]){4}\s*)+",
    "string": r"[ \r\n\t\S]+",
    "markdown": r"[ \r\n\t\S]+",
    "xhtml": r"[\s\S]+",
}
# ASCII: \s and \S as in the spec's (Java) regular expressions, where only [ \t\n\x0b\f\r] is space.
PRIMITIVE_REGEX = {name: re.compile(pattern, re.ASCII) for name, pattern in PRIMITIVE_PATTERNS.items()}
CALENDAR_TYPES = frozenset({"date", "dateTime", "instant"})
INT_RANGE = {"integer": (-(2**31), 2**31 - 1), "positiveInt": (1, 2**31 - 1), "unsignedInt": (0, 2**31 - 1)}


@dataclass(frozen=True)
class Element:
    """One element of a resource or datatype as the base spec defines it."""

    name: str
    fhir_type: str  # a primitive ("code"), a datatype or backbone model name, or "Resource"
    primitive: bool
    repeats: bool
    required: bool
    choice: str | None  # "value" for valueQuantity, ...
    codes: frozenset[str] | None = None  # a required binding of the base spec (base_codes.py)


@dataclass(frozen=True)
class Definition:
    """The elements of one type, by JSON name, and its choice groups."""

    name: str
    elements: dict[str, Element]
    choices: dict[str, tuple[str, ...]]
    required_choices: tuple[str, ...]
    required: tuple[Element, ...] = ()


def _primitive_name(annotation: Any) -> str | None:
    if annotation is bool:
        return "boolean"
    if typing.get_origin(annotation) is typing.Annotated:
        meta = typing.get_args(annotation)[1]
        name = type(meta).__name__
        return name[0].lower() + name[1:]
    return None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The element type of a field annotation and whether it is a list."""
    repeats = False
    while True:
        origin = typing.get_origin(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
            annotation = args[0]
        elif origin in (list, list):
            repeats = True
            annotation = args[0]
        else:
            return annotation, repeats


@cache
def definition(type_name: str) -> Definition | None:
    """The compiled definition of a resource, datatype or backbone element, by model name."""
    try:
        model = r4b.get_fhir_model_class(type_name)
    except (KeyError, ValueError, AttributeError):
        return None
    elements: dict[str, Element] = {}
    choices: dict[str, list[str]] = {}
    required_choices: set[str] = set()
    for field in model.model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        name = field.alias or ""
        if name.endswith("__ext"):
            continue
        inner, repeats = _unwrap(field.annotation)
        primitive = _primitive_name(inner)
        if primitive is not None:
            fhir_type = primitive
        elif hasattr(inner, "get_model_klass"):
            fhir_type = inner.__name__.removesuffix("Type")
            if fhir_type in ("Resource", "DomainResource"):
                fhir_type = "Resource"
        else:  # pragma: no cover - every R4B element is a primitive or a model (checked by a test)
            fhir_type = str(getattr(inner, "__name__", inner))
        choice = str(extra["one_of_many"]) if extra.get("one_of_many") else None
        if choice:
            choices.setdefault(choice, []).append(name)
            if extra.get("one_of_many_required"):
                required_choices.add(choice)
        required = bool(field.is_required() or extra.get("element_required"))
        codes = BASE_CODES.get(f"{type_name}.{name}")
        elements[name] = Element(name, fhir_type, primitive is not None, repeats, required and not choice, choice, codes)
    return Definition(type_name, elements, {k: tuple(v) for k, v in choices.items()}, tuple(sorted(required_choices)),
                      tuple(e for e in elements.values() if e.required))


def _primitive_problem(fhir_type: str, value: Any) -> str | None:
    if fhir_type == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if fhir_type in INT_RANGE:
        low, high = INT_RANGE[fhir_type]
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer ({fhir_type})"
        return None if low <= value <= high else f"{value} is out of range for {fhir_type}"
    if fhir_type == "decimal":
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "must be a number (decimal)"
    if not isinstance(value, str):
        return f"must be a string ({fhir_type})"
    pattern = PRIMITIVE_REGEX.get(fhir_type)
    if pattern is not None and not pattern.fullmatch(value):
        return f"{value[:60]!r} is not a valid {fhir_type}"
    if fhir_type in CALENDAR_TYPES and not real_day(value):
        return f"{value[:60]!r} is not a valid {fhir_type} (no such day)"
    return None


def real_day(value: str) -> bool:
    """The day of a date that matched its pattern exists: the patterns allow 2026-02-30."""
    if len(value) < 10 or value[8] < "3" and value[8:10] != "29":
        return True  # no day, or the 1st to the 28th: every month has them
    year, month, day = int(value[:4]), int(value[5:7]), int(value[8:10])
    return day <= calendar.monthrange(year, month)[1]


# Invariants of the base spec on the types themselves (https://hl7.org/fhir/R4/datatypes.html,
# observation.html), written in the FHIRPath subset of fhirpath.py: (key, human, expression,
# when). ``when`` is a Python expression of the object ``{0}`` true whenever the invariant can
# fail, so the common object that cannot is passed over without evaluating the expression.
_QTY_3 = ("qty-3", "If a code for the unit is present, the system SHALL also be present", "code.empty() or system.exists()",
          "'code' in {0} and not {0}.get('system')")
BASE_INVARIANTS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "Period": (("per-1", "If present, start SHALL have a lower value than end", "start.empty() or end.empty() or start <= end",
                "'start' in {0} and 'end' in {0}"),),
    "Quantity": (_QTY_3,), "Duration": (_QTY_3,), "Age": (_QTY_3,), "Count": (_QTY_3,), "Distance": (_QTY_3,),
    "Ratio": (("rat-1", "Numerator and denominator SHALL both be present, or both are absent. If both are absent, "
               "there SHALL be some extension present",
               "(numerator.empty() xor denominator.exists()) and (numerator.exists() or extension.exists())",
               "not {0}.get('numerator') or not {0}.get('denominator')"),),
    "Observation": (("obs-6", "dataAbsentReason SHALL only be present if Observation.value[x] is not present",
                     "dataAbsentReason.empty() or value.empty()", "'dataAbsentReason' in {0}"),),
}


@dataclass(frozen=True)
class BaseInvariant:
    """A base-spec invariant of a type: when it can fail (a Python expression of ``{0}``),
    whether an object meets it, and the issue when not."""

    key: str
    when: str
    holds: Callable[[dict[str, Any]], bool]
    report: Callable[[str, list[Issue]], None]


@cache
def base_invariants(type_name: str) -> tuple[BaseInvariant, ...]:
    found = []
    for key, human, expression, when in BASE_INVARIANTS.get(type_name, ()):
        compiled, _ = compile_invariant(expression)
        can_fail = eval(f"lambda v: {when.format('v')}")  # noqa: S307 - constant text
        message = f"{key}: {human} ({expression})"

        def report(path: str, out: list[Issue], message: str = message, key: str = key) -> None:
            out.append(issue("invariant", message, path, key=key, element=type_name))

        def meets(value: dict[str, Any], compiled: Any = compiled, can_fail: Any = can_fail) -> bool:
            return not can_fail(value) or holds(compiled, value, value)
        found.append(BaseInvariant(key, when, meets, report))
    return tuple(found)


def unknown_element(out: list[Issue], type_name: str, key: str, path: str) -> None:
    out.append(issue("unknown", f"unknown element '{key}' in {type_name}", f"{path}.{key}", element=type_name))


def choice_count(value: dict[str, Any], type_name: str, group: str, names: tuple[str, ...], required: bool,
                 path: str, out: list[Issue]) -> None:
    """At most one type of the choice ``group[x]`` present, and one when it is required."""
    present = [name for name in names if name in value]
    if len(present) > 1:
        out.append(issue("type", f"only one of {group}[x] may be present, found {', '.join(present)}",
                         f"{path}.{present[1]}", element=f"{type_name}.{group}[x]"))
    if not present and required:
        missing(out, type_name, f"{group}[x]", f"{path}.{group}")


def missing(out: list[Issue], type_name: str, name: str, path: str) -> None:
    """A required element of the base spec is absent."""
    out.append(issue("min", f"{type_name}.{name}: minimum required = 1, but only found 0", path,
                     element=f"{type_name}.{name}"))


def empty_object(path: str, out: list[Issue]) -> None:
    """An object with nothing in it (base invariant ele-1)."""
    out.append(issue("invariant", "ele-1: All FHIR elements must have a @value or children (the object is empty)",
                     path, key="ele-1", element="Element"))


def not_object(out: list[Issue], type_name: str, path: str) -> None:
    """A value of a complex type that is not a JSON object."""
    out.append(issue("structure", f"must be an object ({type_name})", path, element=type_name))


def not_resource(out: list[Issue], value: Any, path: str) -> bool:
    """Whether ``value``, where a resource belongs, is none (reported): not an object with a
    resourceType, or of a resourceType R4 does not have."""
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        out.append(issue("structure", "must be a resource with a resourceType", path, element="Resource"))
        return True
    if definition(value["resourceType"]) is None:
        out.append(issue("structure", f"unknown resourceType {value['resourceType']!r}", path, element="Resource"))
        return True
    return False


def not_array(out: list[Issue], element: Element, type_name: str, path: str) -> None:
    """A repeating element whose value is not an array."""
    out.append(issue("structure", f"must be an array ({element.name} repeats)", path,
                     element=f"{type_name}.{element.name}"))


def empty_array(out: list[Issue], element: Element, type_name: str, path: str) -> None:
    out.append(issue("structure", "an array must not be empty", path, element=f"{type_name}.{element.name}"))


def an_array(out: list[Issue], element: Element, type_name: str, path: str) -> None:
    """An array where the element does not repeat."""
    out.append(issue("structure", f"must not be an array ({element.name} does not repeat)", path,
                     element=f"{type_name}.{element.name}"))


def bad_primitive(out: list[Issue], item: Any, element: Element, type_name: str, path: str) -> None:
    """What is wrong with a primitive value its quick test did not accept (nothing, if it is valid
    after all)."""
    where = f"{type_name}.{element.name}"
    if item is None:
        out.append(issue("structure", "must not be null", path, element=where))
        return
    problem = _primitive_problem(element.fhir_type, item)
    if problem:
        out.append(issue("type", problem, path, element=where, code="value"))
    elif element.codes is not None and item not in element.codes:
        out.append(issue("binding", f"{item!r} is not one of the codes of {element.name} "
                                    f"({', '.join(sorted(element.codes))})", path, element=where))


# Types whose values can point to a contained resource ("#id") besides Reference.reference.
POINTER_TYPES = frozenset({"canonical", "uri", "url"})


ResourceCheck = Callable[[dict[str, Any], str], list[Issue]]


@dataclass(slots=True)
class Context:
    """What a walk needs besides the value: how to check a resource inside it (contained, a
    Bundle entry), and lists that gather references and codings with their locations (None: not
    gathered; a location is a path, as text or as issues.path_text reads it)."""

    on_resource: ResourceCheck | None = None
    references: list[tuple[Any, str]] | None = None
    codings: list[tuple[Any, str, str]] | None = None
    pointers: list[str] | None = None  # "#..." values of canonical, uri and url elements


# Quick acceptance of the commonest valid primitives, as Python expressions of the value ``{0}``
# (the generated checks inline them); anything they do not accept goes to bad_primitive (which
# words the problem).
FAST_TEMPLATES: dict[str, str] = {
    "string": "type({0}) is str and {0} and '\\x0b' not in {0} and '\\x0c' not in {0}",
    "markdown": "type({0}) is str and {0} and '\\x0b' not in {0} and '\\x0c' not in {0}",
    "boolean": "type({0}) is bool",
    "decimal": "(type({0}) is int or type({0}) is float)",
    "integer": "type({0}) is int and -2147483648 <= {0} <= 2147483647",
    "positiveInt": "type({0}) is int and 1 <= {0} <= 2147483647",
    "unsignedInt": "type({0}) is int and 0 <= {0} <= 2147483647",
    "uri": "type({0}) is str and {0}.isprintable() and ' ' not in {0}",
    "url": "type({0}) is str and {0}.isprintable() and ' ' not in {0}",
    "canonical": "type({0}) is str and {0}.isprintable() and ' ' not in {0}",
    # printable: no tab, line break or other control character; then no space, or none at an end
    # and none twice
    "code": "type({0}) is str and {0} and {0}.isprintable() and (' ' not in {0} or {0} == {0}.strip() and '  ' not in {0})",
}
FAST: dict[str, Callable[[Any], bool]] = {
    name: eval(f"lambda v: {template.format('v')}") for name, template in FAST_TEMPLATES.items()  # noqa: S307 - constant text
}
