"""Each diary rule refuses a bad entry: exit 1 or 422, with the JSON path, the NDJSON line or
the CSV row and column, and no traceback."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import pytest

from fhir_migraine.inputs.diary_files import CSV_COLUMNS
from tests.diary_cases import BAD_ENTRIES, ENTRY, DiaryCase, broken_entry
from tests.helpers import run_cli


def to_csv(entries: list[dict]) -> str:
    """The CSV layout of docs/diary-csv.md, written independently of the reader."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    text = lambda v: json.dumps(v) if not isinstance(v, str) else v  # noqa: E731
    yes_no = lambda v: {True: "yes", False: "no"}.get(v, v) if isinstance(v, bool) else text(v)  # noqa: E731
    for e in entries:
        h = e.get("headache") or {}
        row = {c: "" for c in CSV_COLUMNS}
        row.update(entry_id=e.get("entry_id", ""), date=e.get("date", ""))
        row["patient"] = e["patient"]["reference"] if "patient" in e else ""
        row["headache"] = "yes" if e.get("headache") else ("no" if "headache" in e else "")
        for k in ("start", "end", "location", "quality"):
            row[k] = h.get(k, "")
        for k in ("peak_intensity", "disability"):
            row[k] = text(h[k]) if k in h else ""
        row["worse_with_activity"] = yes_no(h["worse_with_activity"]) if "worse_with_activity" in h else ""
        for k in ("symptoms", "aura", "triggers"):
            row[k] = ";".join(h.get(k, []))
        outcomes = ("relief_2h", "pain_2h", "pain_free_2h", "mbs_free_2h", "rescue", "recurrence_48h")
        row["medications"] = ";".join(
            "|".join([m["drug"], m["dose"], m.get("route", ""), m["taken_at"], *(yes_no(m[k]) if k in m else "" for k in outcomes)])
            for m in e.get("medications", [])
        )
        row["hydration"] = ";".join("|".join([d["product"], d["volume"], d["taken_at"]]) for d in e.get("hydration", []))
        row["infusion_received_at"] = e.get("infusion", {}).get("received_at", "")
        row["infusion_protocol"] = e.get("infusion", {}).get("protocol", "")
        row["menstruation"] = yes_no(e["menstruation"]) if "menstruation" in e else ""
        row["notes"] = e.get("notes", "")
        for name in ("midas", "hit6"):
            for key, answer in e.get(name, {}).items():
                row[f"{name}_{key}"] = text(answer)
        writer.writerow([row[c] for c in CSV_COLUMNS])
    return out.getvalue()


def test_the_valid_entry_maps_in_every_form(tmp_path: Path) -> None:
    for name, text in (("d.json", json.dumps(ENTRY)), ("d.ndjson", json.dumps(ENTRY) + "\n"), ("d.csv", to_csv([ENTRY]))):
        (tmp_path / name).write_text(text)
        run = run_cli("map", "diary", str(tmp_path / name))
        assert run.code == 0, (name, run.err)


@pytest.mark.parametrize("case", BAD_ENTRIES, ids=lambda c: c.id)
def test_bad_entry_in_a_json_array_names_its_path(case: DiaryCase, tmp_path: Path) -> None:
    file = tmp_path / "diary.json"
    file.write_text(json.dumps([ENTRY | {"entry_id": "ok"}, broken_entry(case)]))
    run = run_cli("map", "diary", str(file))
    assert (run.code, run.out) == (1, ""), run.err
    assert "$[1]" + case.path[1:] + ":" in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize("case", BAD_ENTRIES, ids=lambda c: c.id)
def test_bad_entry_in_ndjson_names_its_line_and_path(case: DiaryCase, tmp_path: Path) -> None:
    file = tmp_path / "diary.ndjson"
    file.write_text(json.dumps(ENTRY | {"entry_id": "ok"}) + "\n\n" + json.dumps(broken_entry(case)) + "\n")
    run = run_cli("map", "diary", str(file))
    assert run.code == 1
    assert f"line 3 ({case.path}):" in run.err


@pytest.mark.parametrize("case", BAD_ENTRIES, ids=lambda c: c.id)
def test_bad_entry_in_csv_names_its_row_and_column(case: DiaryCase, tmp_path: Path) -> None:
    file = tmp_path / "diary.csv"
    file.write_text(to_csv([ENTRY | {"entry_id": "ok"}, broken_entry(case)]))
    run = run_cli("map", "diary", str(file))
    assert run.code == 1, run.err
    assert f"row 3, column {case.column} (" in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize("case", BAD_ENTRIES, ids=lambda c: c.id)
def test_bad_entry_posted_to_the_api_is_a_422_naming_the_path(case: DiaryCase, client) -> None:
    answer = client.post("/diary", json=[ENTRY | {"entry_id": "ok"}, broken_entry(case)])
    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    assert "$[1]" + case.path[1:] in [e["path"] for e in answer.get_json()["errors"]]


def test_an_entry_id_twice_in_one_diary_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "diary.json"
    file.write_text(json.dumps([ENTRY, ENTRY]))
    run = run_cli("map", "diary", str(file))
    assert run.code == 1
    assert "$[1].entry_id: entry id 'e-1' appears twice" in run.err


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("entry_id,patient,date,colour\n", "row 1, column colour"),
        ("entry_id,date\n", "row 1, column patient"),
        ("entry_id,patient,date\ne-1,Patient/1,2026-11-20,extra\n", "row 2"),
        ('entry_id,patient,date\n"e-1,Patient/1,2026-11-20\n', "row"),
    ],
    ids=["unknown-column", "missing-column", "extra-cell", "unclosed-quote"],
)
def test_a_malformed_csv_file_is_refused_with_its_row(text: str, where: str, tmp_path: Path) -> None:
    file = tmp_path / "diary.csv"
    file.write_text(text)
    run = run_cli("map", "diary", str(file))
    assert run.code == 1, run.err
    assert where in run.err
    assert "Traceback" not in run.err


def test_a_broken_ndjson_line_is_refused_with_its_number(tmp_path: Path) -> None:
    file = tmp_path / "diary.ndjson"
    file.write_text(json.dumps(ENTRY) + "\n{not json\n")
    run = run_cli("map", "diary", str(file))
    assert run.code == 1
    assert "line 2 ($): is not valid JSON" in run.err


def test_an_integral_float_is_read_as_the_integer_in_json_and_csv(tmp_path: Path) -> None:
    entry = copy.deepcopy(ENTRY)
    entry["headache"] |= {"peak_intensity": 7.0, "disability": 2.0}
    (tmp_path / "d.json").write_text(json.dumps(entry))
    (tmp_path / "d.csv").write_text(to_csv([ENTRY]).replace(",7,", ",7.0,").replace(",2,", ",2.0,"))
    assert ",7.0," in (tmp_path / "d.csv").read_text()
    for name in ("d.json", "d.csv"):
        run = run_cli("map", "diary", str(tmp_path / name))
        assert run.code == 0, (name, run.err)
        components = [c for e in run.json()["entry"] for c in e["resource"].get("component", [])]
        integers = [c["valueInteger"] for c in components if "valueInteger" in c]
        assert integers == [7] and isinstance(integers[0], int), (name, integers)
        assert '"valueInteger": 7.0' not in run.out
