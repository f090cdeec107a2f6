"""Arbitrary JSON, NDJSON and CSV never make ``map diary`` or ``POST /diary`` fail with anything
but a located input error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fhir_migraine.inputs.diary_files import CSV_COLUMNS
from tests.diary_cases import ENTRY
from tests.helpers import run_cli
from tests.property.test_fuzz_inputs import FUZZ, JSON, _assert_located, mutated

CELLS = st.lists(
    st.sampled_from(list("ab1;|:-T+Z \"\n,") + ["yes", "no", "nausea", "7", "50 mg", "Patient/1", "2026-11-20"]),
    max_size=6,
).map("".join)


@FUZZ
@given(st.one_of(JSON, mutated(ENTRY), st.lists(mutated(ENTRY), max_size=3)))
def test_any_json_diary_gives_a_bundle_or_a_located_error(tmp_path: Path, document: Any) -> None:
    file = tmp_path / "diary.json"
    file.write_text(json.dumps(document))
    run = run_cli("map", "diary", str(file))
    _assert_located(run.code, run.err)
    ndjson = tmp_path / "diary.ndjson"
    ndjson.write_text(json.dumps(document) + "\n")
    run = run_cli("map", "diary", str(ndjson), "--out-ndjson")
    _assert_located(run.code, run.err)


@FUZZ
@given(
    st.lists(st.sampled_from(CSV_COLUMNS + ("other",)), min_size=1, max_size=8, unique=True),
    st.lists(st.lists(CELLS, max_size=9), max_size=4),
)
def test_any_csv_diary_gives_a_bundle_or_a_located_error(tmp_path: Path, header: list[str], rows: list[list[str]]) -> None:
    text = ",".join(header) + "\n" + "".join(",".join(row) + "\n" for row in rows)
    file = tmp_path / "diary.csv"
    file.write_text(text)
    run = run_cli("map", "diary", str(file))
    _assert_located(run.code, run.err)
    if run.code == 1:
        assert "row" in run.err


@FUZZ
@given(st.one_of(JSON, mutated(ENTRY), st.lists(mutated(ENTRY), max_size=3)))
def test_the_api_answers_any_diary_with_201_or_a_4xx_problem(client, document: Any) -> None:
    answer = client.post("/diary", data=json.dumps(document), content_type="application/json")
    assert answer.status_code in (201, 400, 422), answer.get_data(as_text=True)
    if answer.status_code != 201:
        assert answer.mimetype == "application/problem+json"
