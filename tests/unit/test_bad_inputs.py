"""Every bad-input rule of the protocol and order contracts: exit 1 / 422, the field's path named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cases import BAD_INPUTS, ORDER, PROTOCOL, Case, broken
from tests.helpers import run_cli


def _write(tmp_path: Path, protocol: dict, order: dict) -> tuple[Path, Path]:
    folder = tmp_path / "protocols"
    folder.mkdir()
    (folder / "protocol.json").write_text(json.dumps(protocol))
    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps(order))
    return folder, order_file


def test_the_base_case_is_valid(tmp_path: Path) -> None:
    folder, order_file = _write(tmp_path, PROTOCOL, ORDER)
    run = run_cli("map", "order", str(order_file), "--protocols", str(folder))
    assert run.code == 0, run.err
    assert run.json()["type"] == "transaction"


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.id)
def test_bad_input_is_refused_by_the_cli_with_its_path(case: Case, tmp_path: Path) -> None:
    protocol, order = broken(case)
    folder, order_file = _write(tmp_path, protocol, order)
    run = run_cli("map", "order", str(order_file), "--protocols", str(folder))
    assert run.code == 1, (run.out, run.err)
    assert run.out == ""
    assert case.path + ":" in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.id)
def test_bad_input_is_refused_by_the_api_with_its_path(case: Case, client, author) -> None:
    protocol, order = broken(case)
    answer = author.put(f"/protocols/{PROTOCOL['id']}", json=protocol)
    if case.target == "protocol":
        assert answer.status_code == 422
    else:
        assert answer.status_code in (200, 201), answer.get_json()
        answer = client.post("/orders", json=order)
        assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    paths = [e["path"] for e in answer.get_json()["errors"]]
    assert case.path in paths
