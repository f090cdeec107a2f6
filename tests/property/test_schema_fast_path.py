"""The fast schema check never accepts what the authoritative one (jsonschema) refuses: a document
the fast check passes has no schema problem at all. Checked on valid documents, on documents with
one member replaced by arbitrary JSON, and on the values where two implementations of JSON Schema
most often differ."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_migraine.inputs import schema
from tests.cases import ORDER, PROTOCOL
from tests.conftest import EXAMPLES, examples
from tests.diary_strategies import diary_entry
from tests.property.test_fuzz_inputs import mutated
from tests.strategies import protocol_and_order

ENTRY = next(e for e in json.loads((EXAMPLES / "diary" / "month.json").read_text()) if e.get("headache"))
SETTINGS = settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Values on which implementations of JSON Schema disagree most: integral floats, booleans for
# numbers, huge and negative numbers, white space of every kind, long and non-ASCII text.
EDGES = st.one_of(
    st.sampled_from([7.0, 0.0, -0.0, 1e308, -1, 2**70, True, False, None, "", " ", "\u00a0", "\u2003x", "\t",
                     "x" * 5000, "🙂" * 40, [], {}, [1, 1], ["a", "a"], {"": 1}]),
    st.floats(allow_nan=False), st.integers(), st.text(max_size=70),
)


def agree(name: str, document: Any) -> None:
    if schema.conforms(name, document):
        assert schema._validator(name).is_valid(document), document


@st.composite
def with_edge(draw: Any, base: Any) -> Any:
    """``base`` with one member replaced by an edge value."""
    document = draw(mutated(base))
    path = draw(st.sampled_from(sorted(_leaf_keys(document), key=repr) or [()]))
    node = document
    for key in path[:-1]:
        node = node[key]
    if path:
        node[path[-1]] = draw(EDGES)
    return document


def _leaf_keys(doc: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _leaf_keys(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _leaf_keys(value, prefix + (i,))
    return found


@SETTINGS
@given(protocol_and_order())
def test_generated_protocols_and_orders_pass_both_checks_alike(case: Any) -> None:
    protocol, order, _ = case
    agree("protocol", protocol)
    agree("order", order)
    assert schema.conforms("protocol", protocol) == schema._validator("protocol").is_valid(protocol)


@SETTINGS
@given(diary_entry())
def test_generated_diary_entries_pass_both_checks_alike(case: Any) -> None:
    entry, _ = case
    agree("diary-entry", entry)


@SETTINGS
@given(st.one_of(with_edge(PROTOCOL).map(lambda d: ("protocol", d)), with_edge(ORDER).map(lambda d: ("order", d)),
                 with_edge(ENTRY).map(lambda d: ("diary-entry", d))))
def test_a_damaged_document_is_never_passed_by_the_fast_check_alone(case: tuple[str, Any]) -> None:
    agree(*case)


@pytest.mark.parametrize(
    ("field", "value"),
    [("peak_intensity", 7.5), ("peak_intensity", True), ("peak_intensity", 11), ("disability", -1),
     ("location", "\u00a0"), ("quality", "pulsating "), ("symptoms", ["nausea", "nausea"]), ("aura", "visual")],
)
def test_known_refusals_are_refused_by_the_fast_check_too(field: str, value: Any) -> None:
    entry = json.loads(json.dumps(ENTRY))
    entry["headache"][field] = value
    assert not schema._validator("diary-entry").is_valid(entry)
    assert not schema.conforms("diary-entry", entry)
