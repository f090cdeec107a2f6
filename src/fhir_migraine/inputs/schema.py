"""JSON Schema (draft 2020-12) checks of the input contracts, reported as located problems.

``jsonschema`` is the authority: it finds and locates every problem. Most documents have none,
so each one first meets the same schema compiled to Python by ``fastjsonschema`` (about twenty
times faster); only a document that this fast check refuses (or cannot judge) goes through
``jsonschema``. The fast check may be stricter than the authority, never looser: a property test
holds the two together (tests/property/test_schema_fast_path.py).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from fhir_migraine.documents import json_path
from fhir_migraine.errors import Problem


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``<name>.schema.json`` shipped with the package."""
    text = resources.files(__package__).joinpath("schemas", f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


@cache
def _validator(name: str) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema(name))
    return Draft202012Validator(schema(name))


@cache
def _fast(name: str) -> Callable[[Any], Any]:
    # A copy: compiling rewrites the schema's references in place.
    return fastjsonschema.compile(copy.deepcopy(schema(name)))  # type: ignore[no-any-return]


def conforms(name: str, document: Any) -> bool:
    """Whether ``document`` passes the fast check of the schema ``name``. False also when the
    fast check cannot judge it: the full check then decides."""
    try:
        _fast(name)(document)
    except Exception:  # JsonSchemaException, or anything odd: the full check is authoritative
        return False
    return True


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The innermost errors: an if/then or allOf failure is reported by what failed inside it."""
    if error.context:
        for sub in error.context:
            yield from _leaves(sub)
    else:
        yield error


_BOUNDS = {"maxItems": "items", "maxLength": "characters", "maxProperties": "members"}


def _problem(error: ValidationError, base: str, sizes: dict[str, int]) -> Problem:
    parts = list(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return Problem(json_path(base, parts + [missing]), "is required")
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            return Problem(json_path(base, parts + [extra[0]]), "is not a known field")
    if error.validator is False or error.schema is False:
        return Problem(json_path(base, parts), "is not allowed here")
    if error.validator == "oneOf" and error.schema.get("oneOf") == [
        {"required": ["reference"]},
        {"required": ["identifier"]},
    ]:
        return Problem(json_path(base, parts), "give either 'reference' or 'identifier', not both or neither")
    if error.validator in _BOUNDS and isinstance(error.instance, (str, list, dict)):
        path, noun = json_path(base, parts), _BOUNDS[error.validator]
        size = sizes.get(path, len(error.instance))
        return Problem(path, f"has {size} {noun}; at most {error.validator_value} are accepted")
    if error.validator == "uniqueItems":
        return Problem(json_path(base, parts), "lists a value more than once")
    if error.validator == "pattern" and error.validator_value == NOT_BLANK:
        return Problem(json_path(base, parts), "must not be blank: it holds only white space")
    message = error.message
    if len(message) > 300:
        message = message[:300] + "…"
    return Problem(json_path(base, parts), message)


# The schemas' pattern for free text: at least one character that is not white space, in the
# Unicode sense of JSON Schema's (ECMA-262) and Python's \S. A name or note of no-break spaces
# alone is as blank to a reader as one of plain spaces, and FHIR tools that read the string
# type's [ \r\n\t\S]+ with Unicode classes refuse it.
NOT_BLANK = r"\S"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_characters(document: Any, path: str = "$") -> list[Problem]:
    """Text with control characters other than tab, line feed and carriage return: FHIR strings
    may not carry them (https://hl7.org/fhir/R4/datatypes.html#string)."""
    found: list[Problem] = []
    if isinstance(document, str):
        bad = _CONTROL.search(document)
        if bad:
            found.append(Problem(path, f"contains the control character U+{ord(bad.group()):04X}; text may hold "
                                       "tab, line feed and carriage return but no other control characters"))
    elif isinstance(document, dict):
        for key, value in document.items():
            found += control_characters(value, json_path(path, [key]))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            found += control_characters(value, f"{path}[{i}]")
    return found


# Problems one document reports before the check stops looking: an array far beyond its
# maxItems would otherwise cost one error per item (the schemas list the bounds of a field
# before its other keywords, so the bound is among the first problems found).
MAX_PROBLEMS = 50


@cache
def _widest(name: str) -> int:
    """The most items or members any list or object of the schema ``name`` may hold."""
    widest, stack = 0, [schema(name)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            widest = max([widest, len(node.get("properties", {}))]
                         + [v for k, v in node.items() if k in ("maxItems", "maxProperties") and isinstance(v, int)])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return widest


def _clipped(document: Any, widest: int, path: str, sizes: dict[str, int]) -> Any:
    """``document`` with every list and object cut to ``widest + 1`` members, the real sizes
    recorded by path: a list of 60,000 steps is then refused for its length without each
    step being checked (the loaders bound the depth, so this recursion is shallow)."""
    if isinstance(document, list):
        if len(document) > widest:
            sizes[path] = len(document)
        return [_clipped(v, widest, f"{path}[{i}]", sizes) for i, v in enumerate(document[: widest + 1])]
    if isinstance(document, dict):
        if len(document) > widest:
            sizes[path] = len(document)
        members = list(document.items())[: widest + 1]
        return {k: _clipped(v, widest, json_path(path, [k]), sizes) for k, v in members}
    return document


def check(name: str, document: Any, base: str = "$") -> list[Problem]:
    """The schema violations of ``document`` against the schema ``name`` (up to MAX_PROBLEMS),
    located by JSON path, and every text with a control character FHIR cannot carry."""
    if conforms(name, document):
        return sorted(control_characters(document, base)[:MAX_PROBLEMS], key=lambda p: p.path)
    sizes: dict[str, int] = {}
    document = _clipped(document, _widest(name), base, sizes)
    problems = {(p.path, p.message): p for p in control_characters(document, base)[:MAX_PROBLEMS]}
    for error in _validator(name).iter_errors(document):
        leaves = [error] if error.validator in ("oneOf", "required") else list(_leaves(error))
        for leaf in leaves:
            problem = _problem(leaf, base, sizes)
            problems.setdefault((problem.path, problem.message), problem)
        if len(problems) >= MAX_PROBLEMS:
            break
    if not problems:  # a clipped list or object the schema bounds nowhere is still too wide
        problems = {(p, ""): Problem(p, f"has {n} members; at most {_widest(name)} are accepted") for p, n in sizes.items()}
    return sorted(problems.values(), key=lambda p: p.path)
