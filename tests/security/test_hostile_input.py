"""Hostile input gets a located 4xx, never a 500, a hung worker or a silent rewrite: each probe of
the security review through the service (Flask test client) and, for files, through the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cases import ORDER, PROTOCOL
from tests.diary_cases import ENTRY
from tests.helpers import run_cli

# The reviewer's 446-byte alias bomb: nine lists of nine references, nine levels deep (9^9
# strings once expanded). Refused at its first anchor, before anything is built.
ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
)
DEEP_YAML = "steps: " + "[" * 900 + "]" * 900 + "\n"
DEEP_JSON = '{"notes": ' + "[" * 900 + "]" * 900 + "}"
YAML = "application/yaml"


def problems(answer: Any, status: int) -> list[dict[str, str]]:
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.mimetype == "application/problem+json"
    return answer.get_json()["errors"]


def paths(answer: Any, status: int) -> list[str]:
    return [e["path"] for e in problems(answer, status)]


def protocol_yaml(protocol: dict[str, Any]) -> str:
    return yaml.safe_dump(protocol, sort_keys=False, allow_unicode=True)


def test_the_alias_bomb_is_refused_at_its_first_anchor(author) -> None:
    assert len(ALIAS_BOMB.encode()) < 500
    answer = author.put("/protocols/lol", data=ALIAS_BOMB, content_type=YAML)
    [problem] = problems(answer, 400)
    assert problem["path"] == "$.a"
    assert "anchor or alias" in problem["message"]
    assert "no use for them" in problem["message"]


def test_an_alias_in_an_otherwise_valid_protocol_is_refused(author) -> None:
    text = protocol_yaml(PROTOCOL).replace("dose: 10 mg", "dose: &ten 10 mg", 1)
    text = text.replace("max_dose: 20 mg", "max_dose: *ten", 1)
    assert paths(author.put(f"/protocols/{PROTOCOL['id']}", data=text, content_type=YAML), 400) == ["$.steps[1].dose"]


def test_yaml_nested_900_deep_is_a_400_naming_where_it_gets_too_deep(author) -> None:
    [problem] = problems(author.put("/protocols/deep", data=DEEP_YAML, content_type=YAML), 400)
    assert problem["path"] == "$.steps" + "[0]" * 63
    assert "nested more than 64 levels" in problem["message"]


def test_json_nested_900_deep_is_a_400_naming_where_it_gets_too_deep(client) -> None:
    [problem] = problems(client.post("/diary", data=DEEP_JSON, content_type="application/json"), 400)
    assert problem["path"] == "$.notes" + "[0]" * 63


def test_a_lone_surrogate_in_notes_is_a_400_naming_notes(client) -> None:
    body = json.dumps(ENTRY | {"notes": "\ud800"})  # json.dumps writes the escape \ud800
    assert "\\ud800" in body
    [problem] = problems(client.post("/diary", data=body, content_type="application/json"), 400)
    assert problem["path"] == "$.notes"
    assert "surrogate" in problem["message"]


def test_a_lone_surrogate_in_a_key_is_located_without_breaking_the_answer(client) -> None:
    body = json.dumps(ENTRY | {"\udc00x": 1})
    [path] = paths(client.post("/diary", data=body, content_type="application/json"), 400)
    assert path == '$["\\udc00x"]'


def test_a_5001_digit_integer_is_a_400_naming_its_field(client) -> None:
    body = json.dumps(ENTRY).replace('"peak_intensity": 7', '"peak_intensity": ' + "9" * 5001)
    [problem] = problems(client.post("/diary", data=body, content_type="application/json"), 400)
    assert problem["path"] == "$.headache.peak_intensity"
    assert "5001 digits" in problem["message"]


def test_a_5001_digit_integer_in_yaml_is_a_400_naming_its_field(author) -> None:
    text = protocol_yaml(PROTOCOL).replace("count:", "count:", 1) + "extra: " + "9" * 5001 + "\n"
    assert paths(author.put(f"/protocols/{PROTOCOL['id']}", data=text, content_type=YAML), 400) == ["$.extra"]


def test_a_dose_given_twice_in_json_is_refused_not_the_last_one_taken(author) -> None:
    text = json.dumps(PROTOCOL).replace('"dose": "10 mg"', '"dose": "10 mg", "dose": "100 mg"', 1)
    [problem] = problems(author.put(f"/protocols/{PROTOCOL['id']}", data=text, content_type="application/json"), 400)
    assert problem == {"path": "$.steps[1].dose", "message": "appears twice"}


def test_a_dose_given_twice_in_yaml_is_refused_not_the_last_one_taken(author) -> None:
    text = protocol_yaml(PROTOCOL).replace("  dose: 10 mg\n", "  dose: 10 mg\n  dose: 100 mg\n", 1)
    assert "dose: 100 mg" in text
    [problem] = problems(author.put(f"/protocols/{PROTOCOL['id']}", data=text, content_type=YAML), 400)
    assert (problem["path"], problem["message"]) == ("$.steps[1].dose", "appears twice")


def test_a_key_given_twice_in_an_order_is_refused(client) -> None:
    text = json.dumps(ORDER)[:-1] + ', "weight": "600 kg"}'
    assert paths(client.post("/orders", data=text, content_type="application/json"), 400) == ["$.weight"]


def test_invalid_utf8_in_yaml_is_refused_and_nothing_is_stored(author) -> None:
    text = protocol_yaml(PROTOCOL | {"id": "latin", "title": "Caf\u00e9 rescue"}).encode("latin-1")
    [problem] = problems(author.put("/protocols/latin", data=text, content_type=YAML), 400)
    assert problem["path"] == "$"
    assert "not UTF-8" in problem["message"]
    assert author.get("/protocols/latin").status_code == 404  # not stored with a replacement character


def test_invalid_utf8_in_json_is_a_400_naming_the_document(client) -> None:
    body = json.dumps(ENTRY).replace("free text", "caf\u00e9").encode("latin-1")
    assert paths(client.post("/diary", data=body, content_type="application/json"), 400) == ["$"]


def test_an_integral_float_intensity_is_read_as_the_integer(client) -> None:
    body = json.dumps(ENTRY).replace('"peak_intensity": 7', '"peak_intensity": 7.0')
    answer = client.post("/diary", data=body, content_type="application/json")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    severities = [
        c["valueInteger"]
        for e in answer.get_json()["entry"]
        for c in e["resource"].get("component", [])
        if "valueInteger" in c
    ]
    assert severities == [7]
    assert isinstance(severities[0], int)


def test_a_fractional_intensity_is_refused_at_the_input(client) -> None:
    body = json.dumps(ENTRY).replace('"peak_intensity": 7', '"peak_intensity": 7.5')
    assert paths(client.post("/diary", data=body, content_type="application/json"), 422) == ["$.headache.peak_intensity"]


@pytest.mark.parametrize("offset", ["+23:59", "-14:01", "+14:30", "+15:00"])
def test_an_offset_beyond_14_hours_is_refused_at_the_input(client, offset: str) -> None:
    entry = copy.deepcopy(ENTRY)
    entry["headache"]["start"] = "2026-11-20T06:30:00" + offset
    [problem] = problems(client.post("/diary", json=entry), 422)
    assert problem["path"] == "$.headache.start"
    assert offset in problem["message"]


def test_an_order_starting_at_an_offset_beyond_14_hours_is_refused_at_the_input(client, author) -> None:
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=PROTOCOL).status_code == 201
    assert paths(client.post("/orders", json=ORDER | {"start": "2026-12-01T09:00:00+23:59"}), 422) == ["$.start"]


def test_offsets_of_14_hours_are_accepted(client) -> None:
    entry = copy.deepcopy(ENTRY)
    entry["headache"] |= {"start": "2026-11-20T06:30:00+14:00", "end": "2026-11-20T06:30:00-14:00"}
    assert client.post("/diary", json=entry).status_code == 201


FAN_OUT = [
    ("steps", lambda p: p["steps"].extend(copy.deepcopy(p["steps"][1]) | {"id": f"s{i}"} for i in range(5000)), "$.steps"),
    ("additives", lambda p: p["steps"][0]["additives"].extend({"drug": "magnesium sulfate", "dose": "1 g"} for _ in range(5000)),
     "$.steps[0].additives"),
    ("repeat-count", lambda p: p.update(schedule={"kind": "repeat", "every": 8, "unit": "h", "count": 1000}), "$.schedule.count"),
    ("long-drug-name", lambda p: p["steps"][1].update(drug="x" * 100_000), "$.steps[1].drug"),
    ("long-dose", lambda p: p["steps"][1].update(dose="1" + " " * 100_000 + "mg"), "$.steps[1].dose"),
]


@pytest.mark.parametrize(("change", "path"), [(c, p) for _, c, p in FAN_OUT], ids=[i for i, _, _ in FAN_OUT])
def test_a_protocol_beyond_the_input_limits_is_a_422_naming_the_field(author, change: Any, path: str) -> None:
    protocol = copy.deepcopy(PROTOCOL)
    change(protocol)
    answer = author.put(f"/protocols/{PROTOCOL['id']}", json=protocol)
    found = problems(answer, 422)
    assert path in [e["path"] for e in found]
    assert len(found) <= 50


ENTRY_FAN_OUT = [
    ("symptoms", ("headache", "symptoms"), ["nausea"] * 200_000, "has 200000 items; at most 8 are accepted"),
    ("triggers-of-any-type", ("headache", "triggers"), [1, "x", None] * 100_000, "has 300000 items; at most 14 are accepted"),
    ("medications", ("medications",), ENTRY["medications"] * 5000, "has 5000 items; at most 20 are accepted"),
    ("drinks", ("hydration",), ENTRY["hydration"] * 5000, "has 5000 items; at most 20 are accepted"),
    ("long-taken-at", ("hydration", 0, "taken_at"), "2026-11-20T08:00:00" + "0" * 100_000,
     "has 100019 characters; at most 40 are accepted"),
]


@pytest.mark.parametrize(("field", "value", "message"), [c[1:] for c in ENTRY_FAN_OUT], ids=[c[0] for c in ENTRY_FAN_OUT])
def test_an_entry_beyond_the_input_limits_is_a_422_naming_the_field(client, field: tuple, value: Any, message: str) -> None:
    entry = copy.deepcopy(ENTRY)
    node = entry
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = value
    found = problems(client.post("/diary", json=entry), 422)
    path = "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in field)
    assert {"path": path, "message": message} in found
    assert len(found) <= 50


def test_an_order_with_thousands_of_overrides_is_a_422_naming_overrides(client) -> None:
    overrides = {f"s{i}": {"dose": "1 mg"} for i in range(10_000)}
    assert "$.overrides" in paths(client.post("/orders", json=ORDER | {"overrides": overrides}), 422)


# The CLI reads files with the same rules.


def test_the_cli_refuses_a_protocol_file_with_an_alias_bomb(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(ALIAS_BOMB)
    run = run_cli("export-protocol", str(tmp_path / "bomb.yaml"))
    assert (run.code, run.out) == (1, "")
    assert "line 1 ($.a): uses a YAML anchor or alias" in run.err


def test_the_cli_refuses_a_protocol_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_bytes(protocol_yaml(PROTOCOL | {"title": "Caf\u00e9"}).encode("latin-1"))
    run = run_cli("export-protocol", str(tmp_path / "p.yaml"))
    assert (run.code, run.out) == (1, "")
    assert "$: is not UTF-8 text" in run.err


def test_the_cli_refuses_an_order_file_that_is_not_utf8_as_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "o.json").write_bytes(json.dumps(ORDER).encode() + b"\xff")
    (tmp_path / "p.json").write_text(json.dumps(PROTOCOL))
    run = run_cli("map", "order", str(tmp_path / "o.json"), "--protocols", str(tmp_path / "p.json"))
    assert run.code == 1, run.err
    assert "$: is not UTF-8 text" in run.err


def test_the_cli_refuses_a_dose_given_twice_in_a_protocol_file(tmp_path: Path) -> None:
    text = json.dumps(PROTOCOL).replace('"dose": "10 mg"', '"dose": "10 mg", "dose": "100 mg"', 1)
    (tmp_path / "p.json").write_text(text)
    run = run_cli("export-protocol", str(tmp_path / "p.json"))
    assert run.code == 1
    assert "($.steps[1].dose): appears twice" in run.err  # a protocol file is read as YAML (JSON is YAML)


def test_the_cli_names_the_line_of_an_ndjson_entry_with_a_key_twice(tmp_path: Path) -> None:
    twice = json.dumps(ENTRY)[:-1] + ', "notes": "other"}'
    (tmp_path / "d.ndjson").write_text(json.dumps(ENTRY | {"entry_id": "ok"}) + "\n" + twice + "\n")
    run = run_cli("map", "diary", str(tmp_path / "d.ndjson"))
    assert run.code == 1
    assert "line 2 ($.notes): appears twice" in run.err


def test_the_cli_refuses_a_surrogate_and_a_huge_number_in_a_json_diary(tmp_path: Path) -> None:
    text = json.dumps([ENTRY | {"notes": "\udfff"}]).replace('"peak_intensity": 7', '"peak_intensity": ' + "1" * 5001)
    (tmp_path / "d.json").write_text(text)
    run = run_cli("map", "diary", str(tmp_path / "d.json"))
    assert run.code == 1, run.err
    assert "$[0].notes: holds a lone surrogate" in run.err
    assert "$[0].headache.peak_intensity: is a number of 5001 digits" in run.err


def test_the_cli_refuses_a_csv_column_given_twice(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("entry_id,patient,date,notes,notes\ne-1,Patient/1,2026-11-20,a,b\n")
    run = run_cli("map", "diary", str(tmp_path / "d.csv"))
    assert run.code == 1
    assert "row 1, column notes ($): appears twice" in run.err


def test_the_cli_refuses_a_diary_file_that_is_not_utf8_as_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(b"entry_id,patient,date,notes\ne-1,Patient/1,2026-11-20,caf\xe9\n")
    run = run_cli("map", "diary", str(tmp_path / "d.csv"))
    assert run.code == 1, run.err
    assert "$: is not UTF-8 text" in run.err
