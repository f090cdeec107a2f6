"""Arbitrary JSON, and valid documents with one field replaced by arbitrary JSON, never make the
CLI or the service fail with anything but a located input error."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_migraine.cli import main
from tests.cases import ORDER, PROTOCOL
from tests.conftest import EXAMPLES, examples

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FUZZ = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
GOLDEN = json.loads((EXAMPLES / "bundles" / "ed-migraine-rescue.bundle.json").read_text())


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, prefix + (i,))
    return found


@st.composite
def mutated(draw: Any, base: Any) -> Any:
    """``base`` with one member replaced by arbitrary JSON (or removed)."""
    doc = copy.deepcopy(base)
    path = draw(st.sampled_from(_paths(doc)))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if draw(st.booleans()) and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = draw(JSON)
    return doc


def _cli(tmp_path: Path, *argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, err.getvalue()


def _assert_located(code: int, err: str) -> None:
    assert code in (0, 1), err
    assert "Traceback" not in err
    if code == 1:
        assert "$" in err


@FUZZ
@given(st.one_of(JSON, mutated(ORDER)))
def test_any_order_document_gives_a_bundle_or_a_located_error(tmp_path: Path, document: Any) -> None:
    folder = tmp_path / "protocols"
    folder.mkdir(exist_ok=True)
    (folder / "p.json").write_text(json.dumps(PROTOCOL))
    order = tmp_path / "order.json"
    order.write_text(json.dumps(document))
    _assert_located(*_cli(tmp_path, "map", "order", str(order), "--protocols", str(folder)))


@FUZZ
@given(st.one_of(JSON, mutated(PROTOCOL)))
def test_any_protocol_document_is_loaded_or_refused_with_a_location(tmp_path: Path, document: Any) -> None:
    protocol = tmp_path / "p.json"
    protocol.write_text(json.dumps(document))
    _assert_located(*_cli(tmp_path, "export-protocol", str(protocol)))


@FUZZ
@given(st.one_of(JSON, mutated(GOLDEN)))
def test_any_bundle_unmaps_or_is_refused_with_a_location(tmp_path: Path, document: Any) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(document))
    _assert_located(*_cli(tmp_path, "unmap", str(bundle)))


@FUZZ
@given(st.one_of(JSON, mutated(ORDER)))
def test_the_api_answers_any_order_with_201_or_a_4xx_problem(client, author, document: Any) -> None:
    author.put(f"/protocols/{PROTOCOL['id']}", json=PROTOCOL)
    answer = client.post("/orders", data=json.dumps(document), content_type="application/json")
    assert answer.status_code in (201, 400, 422), answer.get_data(as_text=True)
    if answer.status_code != 201:
        assert answer.mimetype == "application/problem+json"
        assert all(e["path"].startswith("$") for e in answer.get_json()["errors"])


@FUZZ
@given(st.one_of(JSON, mutated(PROTOCOL)))
def test_the_api_answers_any_protocol_with_success_or_a_4xx_problem(author, document: Any) -> None:
    answer = author.put(f"/protocols/{PROTOCOL['id']}", data=json.dumps(document), content_type="application/json")
    # 409: other content under a version already stored (versions are immutable).
    assert answer.status_code in (200, 201, 400, 409, 422), answer.get_data(as_text=True)
    if answer.status_code >= 400:
        assert answer.mimetype == "application/problem+json"


@FUZZ
@given(st.binary(max_size=200))
def test_the_api_answers_bytes_that_are_not_json_with_a_4xx(client, body: bytes) -> None:
    answer = client.post("/orders", data=body, content_type="application/json")
    assert answer.status_code in (400, 422)
    assert answer.mimetype == "application/problem+json"
