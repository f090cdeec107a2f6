"""Each rule of attacks lists and continued attacks refuses a bad diary: exit 1 or 422, with the
JSON path, the NDJSON line, the CSV row and column of the attack, and no traceback."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.diary_cases import ENTRY, to_csv
from tests.helpers import run_cli

#: The first entry of every diary below: valid, its attack has the id a7 (20 Nov, 06:30-14:00).
FIRST: dict[str, Any] = ENTRY | {"entry_id": "ok", "headache": ENTRY["headache"] | {"id": "a7"}}
#: The entry each case breaks: two attacks on 21 Nov, the first with the id m1.
SECOND: dict[str, Any] = {
    "entry_id": "e-2", "patient": {"reference": "Patient/123"}, "date": "2026-11-21",
    "attacks": [
        {"id": "m1", "start": "2026-11-21T06:00:00+01:00", "end": "2026-11-21T08:00:00+01:00", "peak_intensity": 5},
        {"start": "2026-11-21T18:00:00+01:00", "end": "2026-11-21T20:00:00+01:00"},
    ],
}


@dataclass(frozen=True)
class AttackCase:
    """What a case changes in SECOND (``attack`` None: the entry itself), where the problem is
    reported, and the CSV column (None: the CSV layout cannot write the case)."""

    id: str
    attack: int | None
    change: dict[str, Any]
    path: str
    column: str | None
    message: str

    def entry(self) -> dict[str, Any]:
        entry = copy.deepcopy(SECOND)
        target = entry if self.attack is None else entry["attacks"][self.attack]
        for key, value in self.change.items():
            if value is None:
                del target[key]
            else:
                target[key] = value
        return entry


CASES = [
    AttackCase("headache-and-attacks", None, {"headache": {"start": "2026-11-21T10:00:00+01:00"}}, "$.attacks", "attack",
               "either headache"),
    AttackCase("attacks-overlap", 1, {"start": "2026-11-21T07:00:00+01:00"}, "$.attacks[1].start", "start",
               "during attacks[0]"),
    AttackCase("attacks-start-together", 1, {"start": "2026-11-21T06:00:00+01:00", "end": None}, "$.attacks[1].start",
               "start", "during attacks[0]"),
    AttackCase("attack-ends-before-it-starts", 0, {"end": "2026-11-21T05:00:00+01:00"}, "$.attacks[0].end", "end",
               "before the start"),
    AttackCase("attack-id-twice-in-an-entry", 1, {"id": "m1"}, "$.attacks[1].id", "attack_id", "already attacks[0]"),
    AttackCase("own-id-and-continues", 0, {"continues": "a7"}, "$.attacks[0].continues", "continues", "not both"),
    AttackCase("continues-an-unknown-attack", 1, {"continues": "zz"}, "$.attacks[1].continues", "continues",
               "no entry of this patient in the diary"),
    AttackCase("continues-another-patients-attack", None,
               {"patient": {"reference": "Patient/999"}, "attacks": [{"continues": "a7", "start": "2026-11-21T00:00:00+01:00"}]},
               "$.attacks[0].continues", "continues", "no entry of this patient in the diary"),
    AttackCase("continuation-before-its-attack", 1,
               {"continues": "a7", "start": "2026-11-20T05:00:00+01:00", "end": "2026-11-20T05:30:00+01:00"},
               "$.attacks[1].start", "start", "before attack 'a7' began"),
    AttackCase("attack-id-given-again", 0, {"id": "a7"}, "$.attacks[0].id", "attack_id", "already given by entry 'ok'"),
    AttackCase("attack-id-with-a-space", 0, {"id": "m 1"}, "$.attacks[0].id", "attack_id", "does not match"),
    AttackCase("attack-not-an-object", None, {"attacks": [None]}, "$.attacks[0]", None, "not of type"),
    AttackCase("no-attacks", None, {"attacks": []}, "$.attacks", None, "should be non-empty"),
    AttackCase("unknown-attack-field", 0, {"severity": 3}, "$.attacks[0].severity", None, "is not a known field"),
]


def _row(case: AttackCase) -> int:
    """The CSV row of the problem: the header is row 1, FIRST row 2, the broken entry's attacks 3, 4."""
    listed = case.path.startswith("$.attacks[")
    return 3 + (int(case.path.split("[")[1].split("]")[0]) if listed else 0)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_bad_attack_in_a_json_array_names_its_path(case: AttackCase, tmp_path: Path) -> None:
    file = tmp_path / "diary.json"
    file.write_text(json.dumps([FIRST, case.entry()]))
    run = run_cli("map", "diary", str(file))
    assert (run.code, run.out) == (1, ""), run.err
    assert "$[1]" + case.path[1:] + ":" in run.err and case.message in run.err, run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_bad_attack_in_ndjson_names_its_line_and_path(case: AttackCase, tmp_path: Path) -> None:
    file = tmp_path / "diary.ndjson"
    file.write_text(json.dumps(FIRST) + "\n" + json.dumps(case.entry()) + "\n")
    run = run_cli("map", "diary", str(file))
    assert run.code == 1, run.err
    assert f"line 2 ({case.path}):" in run.err, run.err


@pytest.mark.parametrize("case", [c for c in CASES if c.column is not None], ids=lambda c: c.id)
def test_a_bad_attack_in_csv_names_its_row_and_column(case: AttackCase, tmp_path: Path) -> None:
    file = tmp_path / "diary.csv"
    file.write_text(to_csv([FIRST, case.entry()]))
    run = run_cli("map", "diary", str(file))
    assert run.code == 1, run.err
    assert f"row {_row(case)}, column {case.column} ({case.path})" in run.err, run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_bad_attack_posted_to_the_api_is_a_422_naming_the_path(case: AttackCase, client: Any) -> None:
    answer = client.post("/diary", json=[FIRST, case.entry()])
    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    assert "$[1]" + case.path[1:] in [e["path"] for e in answer.get_json()["errors"]]


def test_the_two_entries_of_the_cases_are_valid_together(tmp_path: Path, client: Any) -> None:
    for name, text in (("d.json", json.dumps([FIRST, SECOND])), ("d.csv", to_csv([FIRST, SECOND]))):
        (tmp_path / name).write_text(text)
        run = run_cli("map", "diary", str(tmp_path / name))
        assert run.code == 0, (name, run.err)
    assert client.post("/diary", json=[FIRST, SECOND]).status_code == 201


def test_a_continuation_posted_alone_is_refused_as_its_attack_is_not_in_the_request(client: Any) -> None:
    # The service keeps no diary between requests: a continuation comes with the entry it continues
    # (re-sending that entry creates nothing new in the EHR: conditional creates on its identifiers).
    alone = SECOND | {"attacks": [{"continues": "a7", "start": "2026-11-21T00:00:00+01:00"}]}
    answer = client.post("/diary", json=alone)
    assert answer.status_code == 422
    assert "$.attacks[0].continues" in [e["path"] for e in answer.get_json()["errors"]]
    assert client.post("/diary", json=[FIRST, alone]).status_code == 201


def test_a_continuation_read_by_map_diary_out_ndjson_finds_its_attack_on_an_earlier_line(tmp_path: Path) -> None:
    later = SECOND | {"attacks": [{"continues": "a7", "start": "2026-11-21T00:00:00+01:00"}]}
    file = tmp_path / "diary.ndjson"
    file.write_text(json.dumps(FIRST) + "\n" + json.dumps(later) + "\n")
    assert run_cli("map", "diary", str(file), "--out-ndjson").code == 0
    file.write_text(json.dumps(later) + "\n" + json.dumps(FIRST) + "\n")
    run = run_cli("map", "diary", str(file), "--out-ndjson")
    assert run.code == 1 and "line 1 ($.attacks[0].continues)" in run.err, run.err


@pytest.mark.parametrize(
    ("rows", "where", "message"),
    [
        (["e-9,Patient/1,2026-11-21,2,2026-11-21T06:00:00+01:00,"], "row 2, column attack", "must follow attack 1"),
        (["e-9,Patient/1,2026-11-21,1,2026-11-21T06:00:00+01:00,", "e-9,,,3,2026-11-21T09:00:00+01:00,"],
         "row 3, column attack", "the entry's next attack is 2"),
        (["e-9,Patient/1,2026-11-21,1,2026-11-21T06:00:00+01:00,", "e-8,,,2,2026-11-21T09:00:00+01:00,"],
         "row 3, column attack", "must follow attack 1"),
        (["e-9,Patient/1,2026-11-21,1,2026-11-21T06:00:00+01:00,", "e-9,,,2,2026-11-21T09:00:00+01:00,too"],
         "row 3, column notes", "fills only entry_id, attack and the attack columns"),
    ],
    ids=["second-attack-first", "attack-number-skipped", "other-entry", "entry-column-on-a-further-row"],
)
def test_a_misplaced_further_attack_row_is_refused_with_its_row_and_column(
        rows: list[str], where: str, message: str, tmp_path: Path) -> None:
    file = tmp_path / "diary.csv"
    file.write_text("entry_id,patient,date,attack,start,notes\n" + "\n".join(rows) + "\n")
    run = run_cli("map", "diary", str(file))
    assert run.code == 1, run.err
    assert where in run.err and message in run.err, run.err
    assert "Traceback" not in run.err
