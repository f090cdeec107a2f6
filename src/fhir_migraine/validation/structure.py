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
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import fhir.resources.R4B as r4b

from fhir_migraine.validation.base_codes import BASE_CODES
from fhir_migraine.validation.fhirpath import compile_invariant, holds
from fhir_migraine.validation.issues import Issue

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TZ = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_DATE = _YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"
PRIMITIVE_PATTERNS = {
    "code": r"[^\s]+( [^\s]+)*",
    "id": r"[A-Za-z0-9\-\.]{1,64}",
    "date": _DATE,
    "dateTime": _YEAR + r"(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?" + _TZ + r")?)?)?",
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
        elif origin in (list, typing.List):
            repeats = True
            annotation = args[0]
        else:
            return annotation, repeats


@lru_cache(maxsize=None)
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


@lru_cache(maxsize=None)
def base_invariants(type_name: str) -> tuple[BaseInvariant, ...]:
    found = []
    for key, human, expression, when in BASE_INVARIANTS.get(type_name, ()):
        compiled, _ = compile_invariant(expression)
        can_fail = eval(f"lambda v: {when.format('v')}")  # noqa: S307 - constant text
        issue = ("error", "invariant", "invariant", f"{key}: {human} ({expression})")

        def report(path: str, out: list[Issue], issue: tuple[str, str, str, str] = issue) -> None:
            out.append(Issue(*issue, path))

        def meets(value: dict[str, Any], compiled: Any = compiled, can_fail: Any = can_fail) -> bool:
            return not can_fail(value) or holds(compiled, value, value)
        found.append(BaseInvariant(key, when, meets, report))
    return tuple(found)


def unknown_element(out: list[Issue], type_name: str, key: str, path: str) -> None:
    out.append(Issue("error", "structure", "unknown", f"unknown element '{key}' in {type_name}", f"{path}.{key}"))


def choice_count(value: dict[str, Any], type_name: str, group: str, names: tuple[str, ...], required: bool,
                 path: str, out: list[Issue]) -> None:
    """At most one type of the choice ``group[x]`` present, and one when it is required."""
    present = [name for name in names if name in value]
    if len(present) > 1:
        out.append(Issue("error", "structure", "type", f"only one of {group}[x] may be present, found {', '.join(present)}",
                         f"{path}.{present[1]}"))
    if not present and required:
        missing(out, type_name, f"{group}[x]", f"{path}.{group}")


def missing(out: list[Issue], type_name: str, name: str, path: str) -> None:
    """A required element of the base spec is absent."""
    out.append(Issue("error", "required", "cardinality", f"{type_name}.{name}: minimum required = 1, but only found 0", path))


def empty_object(path: str, out: list[Issue]) -> None:
    """An object with nothing in it (base invariant ele-1)."""
    out.append(Issue("error", "invariant", "invariant",
                     "ele-1: All FHIR elements must have a @value or children (the object is empty)", path))


# Types whose values can point to a contained resource ("#id") besides Reference.reference.
POINTER_TYPES = frozenset({"canonical", "uri", "url"})


ResourceCheck = Callable[[dict[str, Any], str], list[Issue]]
Check = Callable[[Any, str, "Context", list[Issue]], None]


@dataclass(slots=True)
class Context:
    """What a walk needs besides the value: how to check a resource inside it (contained, a
    Bundle entry), and lists that gather references and codings with their locations (None: not
    gathered; a location is a path, as text or as codegen.path_text reads it)."""

    on_resource: ResourceCheck | None = None
    references: list[tuple[Any, str]] | None = None
    codings: list[tuple[Any, str, str]] | None = None
    pointers: list[str] | None = None  # "#..." values of canonical, uri and url elements


def walk(value: Any, type_name: str, path: str) -> list[Issue]:
    """Base-structure issues of ``value`` read as ``type_name`` at ``path``."""
    out: list[Issue] = []
    checker(type_name)(value, path, Context(), out)
    return out


def _ignore(value: Any, path: str, context: Context, out: list[Issue]) -> None:
    return None


@lru_cache(maxsize=None)
def checker(type_name: str) -> Check:
    """The structure check of one type, compiled once into closures: one handler per element,
    chosen by the element's type and whether it repeats."""
    if type_name == "Resource":
        return check_resource
    found_definition = definition(type_name)
    if found_definition is None:
        return _ignore
    handlers = {name: handler(element) for name, element in found_definition.elements.items()}
    primitives = frozenset(name for name, element in found_definition.elements.items() if element.primitive)
    required = tuple((e.name, f"_{e.name}") for e in found_definition.required)
    choices = tuple(found_definition.choices.items())
    required_choices = found_definition.required_choices
    collect_reference = type_name == "Reference"
    collect_coding = type_name == "Coding"
    collect = collect_reference or collect_coding
    invariants = base_invariants(type_name)

    def check(value: Any, path: str, context: Context, out: list[Issue]) -> None:
        if type(value) is not dict:
            out.append(Issue("error", "structure", "structure", f"must be an object ({type_name})", path))
            return
        if not value:
            empty_object(path, out)
        if collect:
            if collect_reference and context.references is not None and isinstance(value.get("reference"), str):
                context.references.append((f"{path}.reference", value["reference"]))
            elif collect_coding and context.codings is not None and isinstance(value.get("system"), str) \
                    and isinstance(value.get("code"), str):
                context.codings.append((path, value["system"], value["code"]))
        get = handlers.get
        for key, item in value.items():
            element_handler = get(key)
            if element_handler is not None:
                element_handler(item, path, key, context, out)
            elif key != "resourceType" and key != "fhir_comments" and not (key[:1] == "_" and key[1:] in primitives):
                unknown_element(out, type_name, key, path)
        for name, extension_name in required:
            if name not in value and extension_name not in value:
                missing(out, type_name, name, f"{path}.{name}")
        for group, names in choices:
            choice_count(value, type_name, group, names, group in required_choices, path, out)
        for invariant in invariants:
            if not invariant.holds(value):
                invariant.report(path, out)

    return check


Handler = Callable[[Any, str, str, Context, list[Issue]], None]


def handler(element: Element) -> Handler:
    """The check of one element's JSON value (an array when the element repeats). The common
    cases cost one call: a valid primitive, or a complex value handed to its type's checker."""
    if element.primitive:
        return _primitive_handler(element)
    return _complex_handler(element)


def _array_shape(item: Any, key_name: str, path: str, out: list[Issue]) -> bool:
    """Whether a repeating element's value is an array (an empty one is reported but read on)."""
    if type(item) is not list:
        out.append(Issue("error", "structure", "structure", f"must be an array ({key_name} repeats)", path))
        return False
    if not item:
        out.append(Issue("error", "structure", "structure", "an array must not be empty", path))
    return True


def _not_an_array(key_name: str, path: str, out: list[Issue]) -> None:
    out.append(Issue("error", "structure", "structure", f"must not be an array ({key_name} does not repeat)", path))


def _complex_handler(element: Element) -> Handler:
    key_name = element.name
    type_name = element.fhir_type
    cell: list[Check] = []

    def target() -> Check:
        if not cell:  # types refer to each other: look the checker up on first use
            cell.append(checker(type_name))
        return cell[0]

    if element.repeats:
        def repeated(item: Any, path: str, key: str, context: Context, out: list[Issue]) -> None:
            if not _array_shape(item, key_name, f"{path}.{key}", out):
                return
            check = cell[0] if cell else target()
            for i, member in enumerate(item):
                check(member, f"{path}.{key}[{i}]", context, out)
        return repeated

    def single(item: Any, path: str, key: str, context: Context, out: list[Issue]) -> None:
        if type(item) is list:
            _not_an_array(key_name, f"{path}.{key}", out)
            return
        (cell[0] if cell else target())(item, f"{path}.{key}", context, out)
    return single


def _primitive_handler(element: Element) -> Handler:
    key_name = element.name
    one = primitive_check(element)
    fast = one.fast if element.codes is None else None  # type: ignore[attr-defined]
    pointer = element.fhir_type in POINTER_TYPES

    if element.repeats:
        def repeated(item: Any, path: str, key: str, context: Context, out: list[Issue]) -> None:
            if not _array_shape(item, key_name, f"{path}.{key}", out):
                return
            if pointer and context.pointers is not None:
                context.pointers.extend(m for m in item if type(m) is str and m[:1] == "#")
            for i, member in enumerate(item):
                if fast is None or not fast(member):
                    one(member, f"{path}.{key}[{i}]", context, out)
        return repeated

    def single(item: Any, path: str, key: str, context: Context, out: list[Issue]) -> None:
        if pointer and context.pointers is not None and type(item) is str and item[:1] == "#":
            context.pointers.append(item)
        if fast is not None and fast(item):
            return
        if type(item) is list:
            _not_an_array(key_name, f"{path}.{key}", out)
            return
        one(item, f"{path}.{key}", context, out)
    return single


def _matcher(pattern: re.Pattern[str], fhir_type: str) -> Callable[[Any], bool]:
    match = pattern.fullmatch
    if fhir_type in CALENDAR_TYPES:
        return lambda v: type(v) is str and match(v) is not None and real_day(v)
    return lambda v: type(v) is str and match(v) is not None


def primitive_check(element: Element) -> Check:
    fast = FAST.get(element.fhir_type)
    if fast is None and element.fhir_type in PRIMITIVE_REGEX:
        fast = _matcher(PRIMITIVE_REGEX[element.fhir_type], element.fhir_type)
    codes = element.codes
    fhir_type = element.fhir_type

    def primitive(item: Any, path: str, context: Context, out: list[Issue]) -> None:
        if fast is not None and fast(item) and codes is None:
            return
        if item is None:
            out.append(Issue("error", "structure", "structure", "must not be null", path))
            return
        problem = _primitive_problem(fhir_type, item)
        if problem:
            out.append(Issue("error", "value", "type", problem, path))
        elif codes is not None and item not in codes:
            out.append(Issue("error", "code-invalid", "binding",
                             f"{item!r} is not one of the codes of {element.name} ({', '.join(sorted(codes))})", path))
    primitive.fast = fast  # type: ignore[attr-defined]
    return primitive


def check_resource(value: Any, path: str, context: Context, out: list[Issue]) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        out.append(Issue("error", "structure", "structure", "must be a resource with a resourceType", path))
        return
    if definition(value["resourceType"]) is None:
        out.append(Issue("error", "structure", "structure", f"unknown resourceType {value['resourceType']!r}", path))
        return
    if context.on_resource is not None:
        out.extend(context.on_resource(value, path))
    else:
        checker(value["resourceType"])(value, path, context, out)


# Quick acceptance of the commonest valid primitives, as Python expressions of the value ``{0}``
# (the generated checks of writer.py inline them); anything they do not accept goes through the
# full check in _primitive_problem (which gives the message).
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
