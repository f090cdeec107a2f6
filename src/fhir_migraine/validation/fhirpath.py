"""FHIRPath invariants compiled once into Python closures.

The subset the project's profiles use is compiled here: paths (with choice elements such as
``value`` standing for ``valueInteger``), ``exists()``, ``empty()``, ``not()``, ``all()``,
``where()``, ``ofType()``, ``and``/``or``/``implies``/``xor``, comparisons and string, number and
boolean literals, ``$this``. Anything else is compiled by ``fhirpathpy`` and evaluated by it, so
every invariant works; the subset only makes the common ones fast. Semantics follow
https://hl7.org/fhirpath/N1/ (collections, empty propagation, dateTime comparison with offsets).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable

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


def _children(item: Any, name: str) -> Collection:
    """``item.name`` as a collection; a choice name matches ``nameX`` elements."""
    if not isinstance(item, dict):
        return []
    if name in item:
        value = item[name]
        return value if isinstance(value, list) else [value]
    for key, value in item.items():
        if key.startswith(name) and len(key) > len(name) and key[len(name)].isupper():
            return value if isinstance(value, list) else [value]
    return []


def _truth(collection: Collection) -> bool | None:
    """FHIRPath singleton evaluation of a collection as a boolean (None: empty)."""
    if not collection:
        return None
    if len(collection) == 1 and isinstance(collection[0], bool):
        return collection[0]
    return True


_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


def _comparable(value: Any) -> Any:
    if isinstance(value, str) and _INSTANT.match(value):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    return value


def _compare(op: str, left: Collection, right: Collection) -> Collection:
    if not left or not right:
        return []
    if len(left) != 1 or len(right) != 1:
        if op in ("=", "!="):
            equal = left == right
            return [equal if op == "=" else not equal]
        raise ValueError("comparison of collections")
    a, b = _comparable(left[0]), _comparable(right[0])
    if isinstance(a, str) and isinstance(b, str):
        a_date, b_date = _date_fields(a), _date_fields(b)
        if a_date is not None and b_date is not None:
            (a_fields, a_precision), (b_fields, b_precision) = a_date, b_date
            shared = min(len(a_fields), len(b_fields))
            a, b = a_fields[:shared], b_fields[:shared]
            if a == b and a_precision != b_precision:
                return []  # equal as far as both go, one is more precise: unknown
    try:
        result = {"=": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
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
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise Unsupported(f"expected {value!r}")
        self.at += 1
        return token

    def parse(self) -> Compiled:
        compiled = self.implies()
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()}")
        return compiled

    def implies(self) -> Compiled:
        left = self.disjunction()
        while self.peek() == ("name", "implies"):
            self.take()
            right = self.disjunction()
            left = _implies(left, right)
        return left

    def disjunction(self) -> Compiled:
        left = self.conjunction()
        while self.peek() in (("name", "or"), ("name", "xor")):
            op = self.take()[1]
            right = self.conjunction()
            left = _or(left, right) if op == "or" else _xor(left, right)
        return left

    def conjunction(self) -> Compiled:
        left = self.comparison()
        while self.peek() == ("name", "and"):
            self.take()
            right = self.comparison()
            left = _and(left, right)
        return left

    def comparison(self) -> Compiled:
        left = self.path()
        token = self.peek()
        if token and token[0] == "op" and token[1] in ("=", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            right = self.path()
            return _comparison(op, left, right)
        return left

    def path(self) -> Compiled:
        compiled = self.term()
        while self.peek() == ("op", "."):
            self.take()
            compiled = self.invocation(compiled)
        return compiled

    def term(self) -> Compiled:
        token = self.peek()
        if token is None:
            raise Unsupported("unexpected end")
        kind, value = token
        if kind == "string":
            self.take()
            text = value[1:-1].replace("\\'", "'")
            return lambda focus, res: [text]
        if kind == "number":
            self.take()
            number = float(value) if "." in value else int(value)
            return lambda focus, res: [number]
        if value == "(":
            self.take()
            inner = self.implies()
            self.take(")")
            return inner
        if value in ("true", "false"):
            self.take()
            truth = value == "true"
            return lambda focus, res: [truth]
        if value == "$this":
            self.take()
            return lambda focus, res: focus
        if value == "%resource":
            self.take()
            return lambda focus, res: [res]
        if kind == "name" and value not in KEYWORDS:
            return self.invocation(lambda focus, res: focus)
        raise Unsupported(f"unexpected {value!r}")

    def invocation(self, source: Compiled) -> Compiled:
        kind, name = self.take()
        if kind != "name" or name in KEYWORDS:
            raise Unsupported(f"unexpected {name!r}")
        if self.peek() != ("op", "("):
            return lambda focus, res: [c for item in source(focus, res) for c in _children(item, name)]
        self.take("(")
        argument: Compiled | None = None
        type_name: str | None = None
        if name == "ofType":
            type_name = self.take()[1]
        elif self.peek() != ("op", ")"):
            argument = self.implies()
        self.take(")")
        return _function(name, source, argument, type_name)


def _function(name: str, source: Compiled, argument: Compiled | None, type_name: str | None) -> Compiled:
    if name == "exists" and argument is None:
        return lambda focus, res: [bool(source(focus, res))]
    if name == "exists":
        assert argument is not None
        return lambda focus, res: [any(_truth(argument([i], res)) for i in source(focus, res))]
    if name == "empty":
        return lambda focus, res: [not source(focus, res)]
    if name == "not":
        def negate(focus: Collection, res: Any) -> Collection:
            value = _truth(source(focus, res))
            return [] if value is None else [not value]
        return negate
    if name == "all" and argument is not None:
        return lambda focus, res: [all(_truth(argument([i], res)) is True for i in source(focus, res))]
    if name == "where" and argument is not None:
        return lambda focus, res: [i for i in source(focus, res) if _truth(argument([i], res)) is True]
    if name == "ofType" and type_name is not None:
        return _of_type(source, type_name)
    raise Unsupported(f"function {name}()")


# How an element's JSON value shows its FHIR type, for ofType() on choice elements.
def _of_type(source: Compiled, type_name: str) -> Compiled:
    checks: dict[str, Callable[[Any], bool]] = {
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
        "decimal": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "Reference": lambda v: isinstance(v, dict) and ("reference" in v or "identifier" in v or "display" in v),
        "CodeableConcept": lambda v: isinstance(v, dict) and ("coding" in v or "text" in v) and "reference" not in v,
        "Quantity": lambda v: isinstance(v, dict) and "value" in v,
        "Period": lambda v: isinstance(v, dict) and ("start" in v or "end" in v),
    }
    check = checks.get(type_name)
    if check is None:
        raise Unsupported(f"ofType({type_name})")
    return lambda focus, res: [i for i in source(focus, res) if check(i)]


def _comparison(op: str, left: Compiled, right: Compiled) -> Compiled:
    return lambda focus, res: _compare(op, left(focus, res), right(focus, res))


def _and(left: Compiled, right: Compiled) -> Compiled:
    def run(focus: Collection, res: Any) -> Collection:
        a, b = _truth(left(focus, res)), _truth(right(focus, res))
        if a is False or b is False:
            return [False]
        if a is None or b is None:
            return []
        return [True]
    return run


def _or(left: Compiled, right: Compiled) -> Compiled:
    def run(focus: Collection, res: Any) -> Collection:
        a, b = _truth(left(focus, res)), _truth(right(focus, res))
        if a is True or b is True:
            return [True]
        if a is None or b is None:
            return []
        return [False]
    return run


def _xor(left: Compiled, right: Compiled) -> Compiled:
    def run(focus: Collection, res: Any) -> Collection:
        a, b = _truth(left(focus, res)), _truth(right(focus, res))
        return [] if a is None or b is None else [a != b]
    return run


def _implies(left: Compiled, right: Compiled) -> Compiled:
    def run(focus: Collection, res: Any) -> Collection:
        a = _truth(left(focus, res))
        if a is False:
            return [True]
        b = _truth(right(focus, res))
        if a is True:
            return [] if b is None else [b]
        return [True] if b is True else []
    return run


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
