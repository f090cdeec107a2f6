"""docs/mapping.md names every field of the input contracts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fhir_migraine.inputs.schema import schema
from tests.conftest import ROOT

MAPPING = (ROOT / "docs" / "mapping.md").read_text(encoding="utf-8")


def _fields(node: Any, defs: dict[str, Any]) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield from _fields(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        for name, child in node.get("properties", {}).items():
            yield name
            yield from _fields(child, defs)
        for key in ("items", "then", "else", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from _fields(node[key], defs)
        for key in ("allOf", "oneOf", "anyOf"):
            for child in node.get(key, []):
                yield from _fields(child, defs)


def _named(field: str) -> bool:
    """The field appears as code in the doc: `field`, `field[]`, `x.field` or `field.x`."""
    forms = (f"`{field}`", f"`{field}[", f".{field}[", f".{field}`", f"`{field}.", f" {field}`", f"`{field} ")
    return any(token in MAPPING for token in forms)


@pytest.mark.parametrize("name", ["protocol", "order", "diary-entry"])
def test_mapping_doc_names_every_input_field(name: str) -> None:
    document = schema(name)
    missing = sorted({f for f in _fields(document, document.get("$defs", {})) if not _named(f)})
    assert missing == []
