"""Reading documents from bytes or text (strict UTF-8, strict JSON) and writing the project's JSON.

Every input the service and the CLI read, JSON, NDJSON, CSV or YAML, goes through the same rules
here: invalid UTF-8, a lone surrogate, a duplicate key, nesting deeper than ``MAX_DEPTH`` or a
number longer than ``MAX_DIGITS`` digits is refused as UnreadableInput (400, exit 1) naming the
JSON path, instead of being repaired, rewritten or silently taking the last value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from fhir_migraine.errors import Problem, UnreadableInput

# Bounds no input of the project comes near (a protocol nests 5 levels, a FHIR Bundle about 15;
# a clinical number has a handful of digits) and that keep a hostile document cheap to refuse:
# deep nesting makes recursive code overflow the stack, and Python refuses to convert integers
# of more than 4300 digits (an exception, not an answer).
MAX_DEPTH = 64
MAX_DIGITS = 40
MAX_READ_PROBLEMS = 20  # problems one document reports before the reader stops looking

_SURROGATE = re.compile("[\ud800-\udfff]")


def decode(data: str | bytes, what: str = "input") -> str:
    """The text of ``data``: strict UTF-8 (no replacement characters) and no lone surrogates."""
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem = Problem("$", f"is not UTF-8 text (an invalid byte at offset {exc.start})")
            raise UnreadableInput.of([problem], what) from None
    if _SURROGATE.search(data):
        raise UnreadableInput.of([Problem("$", "is not UTF-8 text (it holds a lone surrogate)")], what)
    return data


def json_path(base: str, parts: Iterable[Any]) -> str:
    """``$.steps[1].dose`` from ``$`` and ``["steps", 1, "dose"]``; odd keys are quoted."""
    path = base
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part.replace("_", "a").replace("-", "a").isalnum():
            path += f".{part}"
        else:
            # ensure_ascii only where needed: a key with a lone surrogate cannot be written as UTF-8.
            path += "[" + json.dumps(str(part), ensure_ascii=bool(_SURROGATE.search(str(part)))) + "]"
    return path


class _Twice(dict):  # type: ignore[type-arg]
    """An object whose text repeats keys: the keys, for the check after parsing to locate."""

    def __init__(self, pairs: list[tuple[str, Any]], repeated: list[str]) -> None:
        super().__init__(pairs)
        self.repeated = repeated


class _Refused:
    """A number the parser met but did not convert (too many digits, or not finite)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fast = dict(pairs)
    if len(fast) == len(pairs):  # no key twice: the common case, without a Python loop
        return fast
    found: dict[str, Any] = {}
    repeated = []
    for key, value in pairs:
        if key in found and key not in repeated:
            repeated.append(key)
        found[key] = value
    return _Twice(pairs, repeated) if repeated else found


def _digits(text: str) -> int:
    mantissa = re.split("[eE]", text, maxsplit=1)[0]
    return sum(c.isdigit() for c in mantissa)


def _int(text: str) -> int | _Refused:
    if _digits(text) > MAX_DIGITS:
        return _Refused(f"is a number of {_digits(text)} digits; at most {MAX_DIGITS} are read")
    return int(text)


def _float(text: str) -> float | _Refused:
    if _digits(text) > MAX_DIGITS:
        return _Refused(f"is a number of {_digits(text)} digits; at most {MAX_DIGITS} are read")
    value = float(text)
    if not math.isfinite(value):
        return _Refused("is a number too large to read")
    return value


def _constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


#: Where a value is: None for the document itself, else (where its container is, its key or index).
Where = tuple[Any, Any] | None
#: Values with nothing to check in them (a float is checked: YAML can give an infinite one).
_PLAIN = frozenset({int, bool, type(None)})
#: ... and text too, when the JSON has no escape of a surrogate (the only way one gets in: ``decode``
#: refuses them in the text itself).
_PLAIN_TEXT = _PLAIN | {str}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = "holds a lone surrogate (an escape such as \\ud800 alone), which is not text"


def _path(base: str, where: Where) -> str:
    parts = []
    while where is not None:
        where, part = where
        parts.append(part)
    return json_path(base, reversed(parts))


def _check(value: Any, where: Where, depth: int, found: list[tuple[Where, str]], plain: frozenset[type]) -> None:
    """Add what is refused in ``value`` to ``found``, in document order. The recursion stops at
    MAX_DEPTH, so no deeper document is ever followed; where a value is stays a chain of keys
    until a problem needs its path (``_path``), as writing every path made a large body several
    times slower to read."""
    if len(found) >= MAX_READ_PROBLEMS:
        return
    if isinstance(value, str):
        if _SURROGATE.search(value):
            found.append((where, _LONE_SURROGATE))
    elif isinstance(value, (dict, list)):
        if depth >= MAX_DEPTH:
            found.append((where, f"is nested more than {MAX_DEPTH} levels deep"))
            return
        if isinstance(value, dict):
            found += [((where, key), "appears twice") for key in getattr(value, "repeated", ())]
            if plain is _PLAIN:
                found += [((where, key), "is a key with a lone surrogate, which is not text")
                          for key in value if isinstance(key, str) and _SURROGATE.search(key)]
            items: Iterable[tuple[Any, Any]] = value.items()
        else:
            items = enumerate(value)
        for key, item in items:
            if type(item) not in plain:
                _check(item, (where, key), depth + 1, found, plain)
    elif isinstance(value, _Refused):
        found.append((where, value.message))
    elif isinstance(value, float) and not math.isfinite(value):
        found.append((where, "is not a finite number"))


def read_problems(document: Any, base: str = "$", *, text: bool = True) -> list[Problem]:
    """What the strict reading refuses in a parsed document (JSON, YAML or a CSV row): keys
    given twice, containers nested deeper than MAX_DEPTH, numbers beyond MAX_DIGITS or not
    finite, and text with a lone surrogate (it cannot be written as UTF-8 or sent to an EHR).
    ``text=False``: the document's text is known to hold no surrogate, so its text is not checked."""
    found: list[tuple[Where, str]] = []
    _check(document, None, 0, found, _PLAIN if text else _PLAIN_TEXT)
    return [Problem(_path(base, where), message) for where, message in found[:MAX_READ_PROBLEMS]]


def parse_json(data: str | bytes, what: str = "input", *, base: str = "$", location: str | None = None) -> Any:
    """Parsed JSON, or UnreadableInput naming where the text breaks or what the strict reading
    refuses (see ``read_problems``), each problem under ``base`` and ``location``."""
    text = decode(data, what)
    try:
        document = json.loads(
            text, object_pairs_hook=_object, parse_int=_int, parse_float=_float, parse_constant=_constant
        )
    except json.JSONDecodeError as exc:
        message = f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise UnreadableInput.of([Problem(base, message, location)], what) from None
    except RecursionError:
        problem = Problem(base, f"is nested more than {MAX_DEPTH} levels deep", location)
        raise UnreadableInput.of([problem], what) from None
    problems = read_problems(document, base, text=_SURROGATE_ESCAPE.search(text) is not None)
    if problems:
        raise UnreadableInput.of([Problem(p.path, p.message, location) for p in problems], what)
    return document


def dumps(document: Any) -> str:
    """The project's JSON output form: 2-space indent, UTF-8 characters kept, newline at the end."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
