"""Diary entries and orders near the edges (numbers as floats, offsets, long text, unicode with
surrogates), read from their JSON text as the service reads them: every refusal is an
InputError whose problems name fields of the input (``$...``), never FHIR elements."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_migraine import operations
from fhir_migraine.documents import parse_json
from fhir_migraine.errors import InputError
from fhir_migraine.inputs import protocols
from fhir_migraine.inputs.diary_files import Located
from tests.cases import ORDER, PROTOCOL
from tests.conftest import examples
from tests.diary_cases import ENTRY

EDGES = settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])

NUMBERS = st.one_of(
    st.integers(-2, 12),
    st.integers(-2, 12).map(float),  # 7.0
    st.floats(-1e12, 1e12, allow_nan=False),
    st.sampled_from([0.1, 1e-7, 1e20, 10**40, -0.0, 2**53 + 1]),
)
OFFSETS = st.builds(
    lambda sign, h, m: "Z" if h is None else f"{sign}{h:02d}:{m:02d}",
    st.sampled_from("+-"), st.one_of(st.none(), st.integers(0, 24)), st.integers(0, 59),
)
INSTANTS = st.builds(
    lambda y, mo, d, h, mi, s, frac, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{off}",
    st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24), st.integers(0, 60),
    st.integers(0, 60), st.sampled_from(["", ".5", ".123456789", ".1234567890"]), OFFSETS,
)
TEXT = st.one_of(
    st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=30),  # with surrogates
    st.integers(9990, 10010).map(lambda n: "x" * n),
)
QUANTITIES = st.one_of(
    st.builds(lambda n, u: f"{n} {u}", NUMBERS, st.sampled_from(["mg", "mL", "g", "kg", "mg/kg", "meq"])),
    st.builds(lambda n, u: {"value": n, "unit": u}, NUMBERS, st.sampled_from(["mg", "mL", "kg"])),
)

DIARY_FIELDS: dict[tuple[Any, ...], st.SearchStrategy[Any]] = {
    ("headache", "peak_intensity"): NUMBERS,
    ("headache", "disability"): NUMBERS,
    ("headache", "start"): INSTANTS,
    ("headache", "end"): INSTANTS,
    ("medications", 0, "taken_at"): INSTANTS,
    ("medications", 0, "dose"): QUANTITIES,
    ("hydration", 0, "volume"): QUANTITIES,
    ("hydration", 0, "product"): TEXT,
    ("infusion", "received_at"): INSTANTS,
    ("notes",): TEXT,
    ("menstruation",): st.one_of(st.booleans(), NUMBERS, TEXT, st.none()),
    ("date",): INSTANTS.map(lambda t: t[:10]),
}
ORDER_FIELDS: dict[tuple[Any, ...], st.SearchStrategy[Any]] = {
    ("start",): INSTANTS,
    ("authored",): INSTANTS,
    ("weight",): QUANTITIES,
    ("overrides",): st.builds(lambda q: {"antiemetic": {"dose": q}}, QUANTITIES),
    ("overrides", "fluids"): st.builds(lambda q: {"additives": {"magnesium sulfate": q}}, QUANTITIES),
}


@st.composite
def edited(draw: Any, base: dict[str, Any], fields: dict[tuple[Any, ...], st.SearchStrategy[Any]]) -> dict[str, Any]:
    """``base`` with one to three of ``fields`` set to values near their edges."""
    document = copy.deepcopy(base)
    for field in draw(st.lists(st.sampled_from(sorted(fields, key=str)), min_size=1, max_size=3, unique=True)):
        node = document
        for key in field[:-1]:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        node[field[-1]] = draw(fields[field])
    return document


def _refusal_names_input_fields(run: Any) -> None:
    try:
        run()
    except InputError as exc:  # UnreadableInput included; anything else fails the test
        assert exc.problems
        for problem in exc.problems:
            assert problem.path.startswith("$"), problem
            assert "Bundle" not in problem.path and "resource" not in problem.path, problem


PROTOCOL_LOADED = protocols.load(PROTOCOL)


@EDGES
@given(edited(ENTRY, DIARY_FIELDS))
def test_a_diary_entry_near_the_edges_maps_or_is_refused_at_its_fields(entry: dict[str, Any]) -> None:
    text = json.dumps([entry])  # lone surrogates travel as \ud800 escapes, as from any client
    _refusal_names_input_fields(
        lambda: operations.map_diary(Located(item, f"$[{i}]") for i, item in enumerate(parse_json(text, "diary")))
    )


@EDGES
@given(edited(ORDER, ORDER_FIELDS))
def test_an_order_near_the_edges_maps_or_is_refused_at_its_fields(order: dict[str, Any]) -> None:
    text = json.dumps(order)
    found = {PROTOCOL_LOADED.id: PROTOCOL_LOADED}
    _refusal_names_input_fields(lambda: operations.map_order(parse_json(text, "order"), found.get))
