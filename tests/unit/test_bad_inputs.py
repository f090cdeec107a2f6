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


# Protocol texts the strict reading refuses (400 / exit 1), whichever form they come in: each
# case is the protocol's JSON text changed by hand, read as JSON by the service, and as YAML
# (JSON is YAML) from a file by the CLI and in a YAML body by the service; the path each names
# (libyaml itself refuses a lone surrogate's escape: then the line and column, under "$").
UNREADABLE = [
    ("dose-twice", lambda t: t.replace('"dose": "10 mg"', '"dose": "10 mg", "dose": "100 mg"', 1), "$.steps[1].dose", None),
    ("title-twice", lambda t: t.replace('"title": ', '"title": "A", "title": ', 1), "$.title", None),
    ("lone-surrogate", lambda t: t.replace('"Test rescue"', '"Test \\ud800 rescue"', 1), "$.title", "$"),
    ("long-number", lambda t: t.replace('"schedule": {"kind": "once"}', '"schedule": {"kind": "once", "count": ' + "9" * 500 + "}", 1),
     "$.schedule.count", None),
    ("nested-too-deep", lambda t: t.replace('"schedule": {"kind": "once"}', '"schedule": ' + "[" * 70 + "]" * 70, 1),
     "$.schedule" + "[0]" * 63, None),
]


@pytest.mark.parametrize(("change", "path", "yaml_path"), [c[1:] for c in UNREADABLE], ids=[c[0] for c in UNREADABLE])
def test_an_unreadable_protocol_is_refused_with_its_path_in_every_form(
    change, path: str, yaml_path: str | None, tmp_path: Path, author
) -> None:
    text = change(json.dumps(PROTOCOL))
    (tmp_path / "p.json").write_text(text)
    run = run_cli("export-protocol", str(tmp_path / "p.json"))
    assert (run.code, run.out) == (1, ""), run.err
    located = yaml_path or path
    assert f"({located}): " in run.err or f"  {located}: " in run.err  # with its line, or not
    assert "Traceback" not in run.err
    for content_type, expected in (("application/json", path), ("application/yaml", yaml_path or path)):
        answer = author.put(f"/protocols/{PROTOCOL['id']}", data=text.encode(), content_type=content_type)
        assert answer.status_code == 400, (content_type, answer.get_json())
        assert answer.mimetype == "application/problem+json"
        assert [e["path"] for e in answer.get_json()["errors"]] == [expected]


def test_pull_takes_a_patient_or_a_group_and_a_cursor_only_for_a_patient(capsys) -> None:
    for argv in (["pull", "--ehr", "http://127.0.0.1:9/fhir"],
                 ["pull", "--ehr", "http://127.0.0.1:9/fhir", "--patient", "Patient/1", "--group", "Group/7"]):
        run = run_cli(*argv)
        assert run.code == 2
        assert "--patient" in run.err + capsys.readouterr().err
    run = run_cli("pull", "--ehr", "http://127.0.0.1:9/fhir", "--group", "Group/7", "--cursor")
    assert run.code == 2 and "--cursor is for one patient" in run.err
    run = run_cli("pull", "--ehr", "http://127.0.0.1:9/fhir", "--group", "Group/7", "--since", "yesterday")
    assert run.code == 2 and "--since" in run.err
