"""Reading JSON documents from text, with the location of a syntax error as an InputError."""

from __future__ import annotations

import json
from typing import Any

from fhir_migraine.errors import Problem, UnreadableInput


def parse_json(text: str | bytes, what: str = "input") -> Any:
    """Parsed JSON, or InputError saying where the syntax breaks."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise UnreadableInput.of([Problem("$", "is not UTF-8 text")], what) from None
    except json.JSONDecodeError as exc:
        raise UnreadableInput.of(
            [Problem("$", f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")], what
        ) from None
    except RecursionError:
        raise UnreadableInput.of([Problem("$", "is nested too deeply")], what) from None


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def dumps(document: Any) -> str:
    """The project's JSON output form: 2-space indent, UTF-8 characters kept, newline at the end."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
