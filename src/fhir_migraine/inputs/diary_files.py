"""Diary files: one entry or an array (JSON), one entry per line (NDJSON), or the CSV layout of
docs/diary-csv.md. Entries are read lazily so a large NDJSON or CSV file streams."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from fhir_migraine.documents import parse_json
from fhir_migraine.errors import InputError, Problem, UnreadableInput

FORMATS = ("json", "ndjson", "csv")
LIST_SEPARATOR = ";"
PART_SEPARATOR = "|"

CSV_COLUMNS = (
    "entry_id", "patient", "date", "headache", "start", "end", "peak_intensity", "location", "quality",
    "worse_with_activity", "symptoms", "aura", "triggers", "disability", "medications", "hydration",
    "infusion_received_at", "infusion_protocol", "menstruation", "notes",
    "midas_q1", "midas_q2", "midas_q3", "midas_q4", "midas_q5",
    "hit6_q1", "hit6_q2", "hit6_q3", "hit6_q4", "hit6_q5", "hit6_q6",
)
ATTACK_COLUMNS = CSV_COLUMNS[4:14]
# The questionnaires: one column per answer, named {questionnaire}_{linkId}.
QUESTIONNAIRE_COLUMNS = {
    "midas": tuple(c for c in CSV_COLUMNS if c.startswith("midas_")),
    "hit6": tuple(c for c in CSV_COLUMNS if c.startswith("hit6_")),
}
REQUIRED_COLUMNS = ("entry_id", "patient", "date")


@dataclass(frozen=True)
class Located:
    """A diary entry document, the JSON path its problems are reported under, and for
    line- or row-based files where it came from."""

    document: Any
    base: str = "$"
    line: int | None = None
    csv_row: int | None = None


def format_of(name: str) -> str | None:
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return suffix if suffix in FORMATS else None


def iter_entries(stream: TextIO, fmt: str) -> Iterator[Located]:
    """Entry documents of a diary file, one at a time."""
    if fmt == "json":
        document = parse_json(stream.read(), "diary")
        if isinstance(document, list):
            for i, item in enumerate(document):
                yield Located(item, f"$[{i}]")
        else:
            yield Located(document)
    elif fmt == "ndjson":
        yield from _ndjson(stream)
    elif fmt == "csv":
        yield from _csv(stream)
    else:  # pragma: no cover - callers check the format
        raise ValueError(fmt)


def _ndjson(lines: Iterable[str]) -> Iterator[Located]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        # The same strict reading as a JSON body; the line number joins each problem.
        yield Located(parse_json(line, "diary", location=f"line {number}"), "$", line=number)


def located(problem: Problem, where: Located) -> Problem:
    """A problem of an entry with the line or CSV row and column it came from."""
    if where.line is not None:
        return Problem(problem.path, problem.message, f"line {where.line}")
    if where.csv_row is not None:
        return Problem(problem.path, problem.message, f"row {where.csv_row}, column {column_of(problem.path)}")
    return problem


def column_of(path: str) -> str:
    """The CSV column a JSON path of an entry comes from."""
    parts = re.findall(r"\.([A-Za-z_0-9]+)", path)
    if not parts:
        return "(whole row)"
    if parts[0] == "headache" and len(parts) > 1:
        return parts[1]
    if parts[0] == "infusion" and len(parts) > 1:
        return f"infusion_{parts[1]}"
    if parts[0] in QUESTIONNAIRE_COLUMNS:
        names = QUESTIONNAIRE_COLUMNS[parts[0]]
        return f"{parts[0]}_{parts[1]}" if len(parts) > 1 else f"{names[0]}..{names[-1]}"
    return parts[0]


def _bool(text: str) -> bool | str:
    lowered = text.strip().lower()
    if lowered in ("yes", "true", "y", "1"):
        return True
    if lowered in ("no", "false", "n", "0"):
        return False
    return text  # left as text so the schema names the field


def _int(text: str) -> int | str:
    """An integer cell; ``7.0`` is the integer 7, as the number 7.0 is in JSON (docs/mapping.md)."""
    stripped = text.strip()
    return int(stripped.split(".")[0]) if re.fullmatch(r"-?\d{1,9}(\.0+)?", stripped) else text


def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(LIST_SEPARATOR) if item.strip()]


def _patient(text: str) -> dict[str, Any]:
    if PART_SEPARATOR in text:
        system, _, value = text.partition(PART_SEPARATOR)
        return {"identifier": {"system": system.strip(), "value": value.strip()}}
    return {"reference": text.strip()}


#: The parts of a ``medications`` item after the first five (each may be left empty, trailing ones left out).
MEDICATION_OUTCOME_PARTS = ("pain_2h", "pain_free_2h", "mbs_free_2h", "rescue", "recurrence_48h")


def _medication(text: str) -> dict[str, Any] | str:
    parts = [p.strip() for p in text.split(PART_SEPARATOR)]
    if not 5 <= len(parts) <= 5 + len(MEDICATION_OUTCOME_PARTS):
        return text  # the schema reports it as not an object, with the row and column
    drug, dose, route, taken_at, relief = parts[:5]
    medication: dict[str, Any] = {"drug": drug, "dose": dose}
    if route:
        medication["route"] = route
    medication["taken_at"] = taken_at
    if relief:
        medication["relief_2h"] = _bool(relief)
    for name, part in zip(MEDICATION_OUTCOME_PARTS, parts[5:], strict=False):
        if part:
            medication[name] = part if name == "pain_2h" else _bool(part)
    return medication


def _drink(text: str) -> dict[str, Any] | str:
    parts = [p.strip() for p in text.split(PART_SEPARATOR)]
    if len(parts) != 3:
        return text
    return {"product": parts[0], "volume": parts[1], "taken_at": parts[2]}


def entry_from_row(row: dict[str, str]) -> dict[str, Any]:
    """The entry document of one CSV row; empty cells are absent fields."""
    cell = {k: (v or "") for k, v in row.items() if k is not None}
    entry: dict[str, Any] = {}
    for name in REQUIRED_COLUMNS:
        if cell.get(name, "").strip():
            entry[name] = _patient(cell[name]) if name == "patient" else cell[name].strip()
    headache = cell.get("headache", "").strip().lower()
    if headache in ("no", "false", "n", "0"):
        entry["headache"] = None
    elif headache in ("yes", "true", "y", "1") or any(cell.get(c, "").strip() for c in ATTACK_COLUMNS):
        attack: dict[str, Any] = {}
        for name in ATTACK_COLUMNS:
            text = cell.get(name, "").strip()
            if not text:
                continue
            if name in ("symptoms", "aura", "triggers"):
                attack[name] = _list(text)
            elif name in ("peak_intensity", "disability"):
                attack[name] = _int(text)
            elif name == "worse_with_activity":
                attack[name] = _bool(text)
            else:
                attack[name] = text
        entry["headache"] = attack
    elif headache:
        entry["headache"] = cell["headache"]  # neither yes nor no: the schema names it
    if cell.get("medications", "").strip():
        entry["medications"] = [_medication(m) for m in _list(cell["medications"])]
    if cell.get("hydration", "").strip():
        entry["hydration"] = [_drink(d) for d in _list(cell["hydration"])]
    if cell.get("infusion_received_at", "").strip() or cell.get("infusion_protocol", "").strip():
        infusion: dict[str, Any] = {}
        if cell.get("infusion_received_at", "").strip():
            infusion["received_at"] = cell["infusion_received_at"].strip()
        if cell.get("infusion_protocol", "").strip():
            infusion["protocol"] = cell["infusion_protocol"].strip()
        entry["infusion"] = infusion
    if cell.get("menstruation", "").strip():
        entry["menstruation"] = _bool(cell["menstruation"])
    for name, columns in QUESTIONNAIRE_COLUMNS.items():
        # Any answer given makes the questionnaire; an answer left empty is then reported missing.
        answers = {c[len(name) + 1:]: cell[c].strip() for c in columns if cell.get(c, "").strip()}
        if answers:
            entry[name] = {k: _int(v) for k, v in answers.items()} if name == "midas" else answers
    if cell.get("notes", ""):
        entry["notes"] = cell["notes"]
    return entry


def _csv(stream: TextIO) -> Iterator[Located]:
    reader = csv.DictReader(stream, strict=True)
    try:
        header = reader.fieldnames or []
        unknown = [c for c in header if c not in CSV_COLUMNS]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        # A column given twice would silently take its last cell, as a JSON key given twice would.
        twice = sorted({c for c in header if c in CSV_COLUMNS and header.count(c) > 1})
        if unknown or missing or twice:
            problems = [Problem("$", "is not a known column", f"row 1, column {c}") for c in unknown]
            problems += [Problem("$", "is a required column", f"row 1, column {c}") for c in missing]
            problems += [Problem("$", "appears twice", f"row 1, column {c}") for c in twice]
            raise InputError.of(problems, "diary CSV header")
        for number, row in enumerate(reader, start=2):  # row 1 is the header
            if None in row:
                raise InputError.of([Problem("$", "has more cells than the header", f"row {number}")], "diary")
            yield Located(entry_from_row(row), "$", csv_row=number)
    except csv.Error as exc:
        raise UnreadableInput.of([Problem("$", f"is not valid CSV: {exc}", f"row {reader.line_num}")], "diary") from None


def read_text(text: str, fmt: str) -> list[Located]:
    return list(iter_entries(io.StringIO(text), fmt))
