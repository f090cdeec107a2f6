"""FHIRPath invariants compiled once into Python.

The subset the project's profiles use is compiled here: paths (with choice elements such as
``value`` standing for ``valueInteger``), ``exists()``, ``empty()``, ``not()``, ``all()``,
``where()``, ``ofType()``, ``and``/``or``/``implies``/``xor``, comparisons and string, number and
boolean literals, ``$this``, each expression written as one Python expression. Anything else is
compiled by ``fhirpathpy`` and evaluated by it, so every invariant works; the subset only makes
the common ones fast. Semantics follow https://hl7.org/fhirpath/N1/ (collections, empty
propagation, dateTime comparison with offsets).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Collection = list[Any]
Compiled = Callable[[Collection, Any], Collection]  # (focus, resource) -> result

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<number>\d+(?:\.\d+)?)|(?P<op><=|>=|!=|=|<|>|\(|\)|\.|,)"
    r"|(?P<name>\$this|%resource|[A-Za-z_][A-Za-z0-9_]*))"
)
KEYWORDS = {"and", "or", "implies", "xor", "true", "false"}


class Unsupported(Exception):
    """The expression uses FHIRPath beyond the compiled subset."""


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if not match or match.end() == at:
            raise Unsupported(f"cannot read {text[at:at + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        at = match.end()
    return tokens


def _children(items: Collection, name: str) -> Collection:
    """``items.name``: the values of ``name`` in each item, arrays flattened; a choice name
    matches ``nameX`` elements (``value`` finds ``valueInteger``)."""
    found: Collection = []
    size = len(name)
    for item in items:
        if type(item) is not dict:
            continue
        value = item.get(name)
        if value is None:
            for key in item:
                if key[:size] == name and len(key) > size and key[size].isupper():
                    value = item[key]
                    break
            else:
                continue
        if type(value) is list:
            found.extend(value)
        else:
            found.append(value)
    return found


def _truth(collection: Collection) -> bool | None:
    """FHIRPath singleton evaluation of a collection as a boolean (None: empty)."""
    if not collection:
        return None
    if len(collection) == 1 and isinstance(collection[0], bool):
        return collection[0]
    return True


_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _same_zone_instants(a: Any, b: Any) -> bool:
    """Two instants written alike (same length, same offset): their text orders them as time."""
    return (type(a) is str and type(b) is str and len(a) == len(b) and a[-6:] == b[-6:]
            and _INSTANT.match(a) is not None and _INSTANT.match(b) is not None)


_ORDER = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
          "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}


def _compare(op: str, left: Collection, right: Collection) -> Collection:
    if not left or not right:
        return []
    if len(left) == 1 and len(right) == 1 and _same_zone_instants(left[0], right[0]):
        return [_ORDER[op](left[0], right[0])]
    if len(left) != 1 or len(right) != 1:
        if op in ("=", "!="):
            equal = left == right
            return [equal if op == "=" else not equal]
        raise ValueError("comparison of collections")
    a, b = left[0], right[0]
    if isinstance(a, str) and isinstance(b, str) and _INSTANT.match(a) and _INSTANT.match(b):
        a, b = _instant(a), _instant(b)
    elif isinstance(a, str) and isinstance(b, str):
        a_date, b_date = _date_fields(a), _date_fields(b)
        if a_date is not None and b_date is not None:
            (a_fields, a_precision), (b_fields, b_precision) = a_date, b_date
            shared = min(len(a_fields), len(b_fields))
            a, b = a_fields[:shared], b_fields[:shared]
            if a == b and a_precision != b_precision:
                return []  # equal as far as both go, one is more precise: unknown
    try:
        result = _ORDER[op](a, b)
    except TypeError:
        return []
    return [result]


_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T\d{2}:\d{2}.*)?)?)?$")


def _date_fields(value: str) -> tuple[tuple[int, ...], int] | None:
    """A date or dateTime not compared as an instant: its calendar fields as written (a time keeps
    only its date) and its precision (a time is one step finer than a day). Values of different
    precision compare field by field; equal shared fields leave the result unknown
    (https://hl7.org/fhirpath/N1/#comparison)."""
    match = _PARTIAL_DATE.match(value)
    if match is None:
        return None
    fields = tuple(int(f) for f in match.groups() if f is not None)
    return fields, len(fields) + (1 if "T" in value else 0)


class _Parser:
    """Reads an expression of the subset and writes it as one Python expression of ``focus``
    (the input collection) and ``res`` (the resource) that evaluates to a collection."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.at = 0
        self.constants: dict[str, Any] = {}

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise Unsupported(f"expected {value!r}")
        self.at += 1
        return token

    def constant(self, value: Any) -> str:
        name = f"k{len(self.constants)}"
        self.constants[name] = value
        return name

    def parse(self) -> Compiled:
        source = self.implies()
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()}")
        scope = {**_HELPERS, **self.constants}
        return eval(compile(f"lambda focus, res: {source}", "<fhirpath>", "eval"), scope)  # type: ignore[no-any-return]  # noqa: S307

    def implies(self) -> str:
        left = self.disjunction()
        while self.peek() == ("name", "implies"):
            self.take()
            left = f"_implies(_truth({left}), lambda: _truth({self.disjunction()}))"
        return left

    def disjunction(self) -> str:
        left = self.conjunction()
        while self.peek() in (("name", "or"), ("name", "xor")):
            op = self.take()[1]
            right = self.conjunction()
            if op == "or":
                left = f"_or(_truth({left}), lambda: _truth({right}))"
            else:
                left = f"_xor(_truth({left}), _truth({right}))"
        return left

    def conjunction(self) -> str:
        left = self.comparison()
        while self.peek() == ("name", "and"):
            self.take()
            left = f"_and(_truth({left}), lambda: _truth({self.comparison()}))"
        return left

    def comparison(self) -> str:
        left = self.path()
        token = self.peek()
        if token and token[0] == "op" and token[1] in ("=", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            return f"_compare({op!r}, {left}, {self.path()})"
        return left

    def path(self) -> str:
        source = self.term()
        while self.peek() == ("op", "."):
            self.take()
            source = self.invocation(source)
        return source

    def term(self) -> str:
        token = self.peek()
        if token is None:
            raise Unsupported("unexpected end")
        kind, value = token
        if kind == "string":
            self.take()
            return f"[{self.constant(value[1:-1].replace(chr(92) + chr(39), chr(39)))}]"
        if kind == "number":
            self.take()
            return f"[{float(value) if '.' in value else int(value)!r}]"
        if value == "(":
            self.take()
            inner = self.implies()
            self.take(")")
            return inner
        if value in ("true", "false"):
            self.take()
            return f"[{value == 'true'}]"
        if value == "$this":
            self.take()
            return "focus"
        if value == "%resource":
            self.take()
            return "[res]"
        if kind == "name" and value not in KEYWORDS:
            return self.invocation("focus")
        raise Unsupported(f"unexpected {value!r}")

    def invocation(self, source: str) -> str:
        kind, name = self.take()
        if kind != "name" or name in KEYWORDS:
            raise Unsupported(f"unexpected {name!r}")
        if self.peek() != ("op", "("):
            return f"_children({source}, {name!r})"
        self.take("(")
        argument: str | None = None
        type_name: str | None = None
        if name == "ofType":
            type_name = self.take()[1]
        elif self.peek() != ("op", ")"):
            argument = self.implies()
        self.take(")")
        return self.function(name, source, argument, type_name)

    def function(self, name: str, source: str, argument: str | None, type_name: str | None) -> str:
        # An argument is evaluated with each item as its own focus: a lambda of ``focus``.
        each = f"(lambda focus: {argument})" if argument is not None else None
        if name == "exists" and each is None:
            return f"[bool({source})]"
        if name == "exists":
            return f"[any(_truth({each}([i])) for i in {source})]"
        if name == "empty" and each is None:
            return f"[not {source}]"
        if name == "not" and each is None:
            return f"_not(_truth({source}))"
        if name == "all" and each is not None:
            return f"[all(_truth({each}([i])) is True for i in {source})]"
        if name == "where" and each is not None:
            return f"[i for i in {source} if _truth({each}([i])) is True]"
        if name == "ofType" and type_name is not None:
            if type_name not in _OF_TYPE:
                raise Unsupported(f"ofType({type_name})")
            return f"[i for i in {source} if {self.constant(_OF_TYPE[type_name])}(i)]"
        raise Unsupported(f"function {name}()")


# How an element's JSON value shows its FHIR type, for ofType() on choice elements.
_OF_TYPE: dict[str, Callable[[Any], bool]] = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "decimal": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "Reference": lambda v: isinstance(v, dict) and ("reference" in v or "identifier" in v or "display" in v),
    "CodeableConcept": lambda v: isinstance(v, dict) and ("coding" in v or "text" in v) and "reference" not in v,
    "Quantity": lambda v: isinstance(v, dict) and "value" in v,
    "Period": lambda v: isinstance(v, dict) and ("start" in v or "end" in v),
}


# Boolean logic on singleton truths (None: empty), https://hl7.org/fhirpath/N1/#boolean-logic.
# The right side is a thunk, evaluated only when the left one does not decide.
def _and(a: bool | None, right: Callable[[], bool | None]) -> Collection:
    if a is False:
        return [False]
    b = right()
    if b is False:
        return [False]
    return [] if a is None or b is None else [True]


def _or(a: bool | None, right: Callable[[], bool | None]) -> Collection:
    if a is True:
        return [True]
    b = right()
    if b is True:
        return [True]
    return [] if a is None or b is None else [False]


def _xor(a: bool | None, b: bool | None) -> Collection:
    return [] if a is None or b is None else [a != b]


def _implies(a: bool | None, right: Callable[[], bool | None]) -> Collection:
    if a is False:
        return [True]
    b = right()
    if a is True:
        return [] if b is None else [b]
    return [True] if b is True else []


def _not(value: bool | None) -> Collection:
    return [] if value is None else [not value]


_HELPERS: dict[str, Any] = {"_children": None, "_truth": None, "_compare": None, "_and": _and, "_or": _or,
                            "_xor": _xor, "_implies": _implies, "_not": _not}


def _with_fhirpathpy(expression: str) -> Compiled:
    import fhirpathpy
    from fhirpathpy.models import models

    compiled = fhirpathpy.compile(expression, models["r4"])
    return lambda focus, res: [v for item in focus for v in compiled(item, None)]


def compile_invariant(expression: str) -> tuple[Compiled, bool]:
    """The invariant as a function of (focus collection, resource), and whether the fast subset
    compiled it (False: fhirpathpy evaluates it)."""
    try:
        return _Parser(expression).parse(), True
    except Unsupported:
        return _with_fhirpathpy(expression), False


def holds(compiled: Compiled, focus: Any, resource: Any) -> bool:
    """An invariant holds when it evaluates to true; false and empty both break it (a constraint
    is a "condition that must evaluate to true", ElementDefinition.constraint; HAPI and the HL7
    validator count an empty result as a failure too)."""
    try:
        return _truth(compiled([focus], resource)) is True
    except (ValueError, TypeError):
        return False


_HELPERS.update({"_children": _children, "_truth": _truth, "_compare": _compare})
