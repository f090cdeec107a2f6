"""The example diary month: JSON, NDJSON and CSV map to the same golden Bundle, which parses
as FHIR R4 and unmaps to the entries exactly."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from fhir_migraine.mapping.fhir import identifiers
from tests.conftest import EXAMPLES
from tests.helpers import run_cli

DIARY = EXAMPLES / "diary"
GOLDEN = DIARY / "month.bundle.json"


@pytest.mark.parametrize("name", ["month.json", "month.ndjson", "month.csv"])
def test_each_form_of_the_month_prints_the_golden_bundle(name: str) -> None:
    run = run_cli("map", "diary", str(DIARY / name))
    assert run.code == 0, run.err
    assert run.out == GOLDEN.read_text(encoding="utf-8")


def test_the_golden_bundle_parses_as_fhir_r4() -> None:
    bundle = Bundle.model_validate(json.loads(GOLDEN.read_text(encoding="utf-8")))
    assert bundle.type == "transaction"
    assert all(e.request.ifNoneExist.startswith("identifier=") for e in bundle.entry)


def test_unmap_gives_back_the_entries_exactly() -> None:
    run = run_cli("unmap", str(GOLDEN))
    assert run.code == 0, run.err
    assert run.json() == {"orders": [], "diary": json.loads((DIARY / "month.json").read_text(encoding="utf-8"))}


def test_the_month_has_what_clinicians_asked_to_see() -> None:
    entries = json.loads((DIARY / "month.json").read_text(encoding="utf-8"))
    attacks = [e["headache"] for e in entries if e.get("headache")]
    assert any(e.get("headache", 0) is None for e in entries), "a headache-free day"
    assert any(a["start"][:10] != a["end"][:10] for a in attacks if "end" in a), "an attack crossing midnight"
    assert any(a["start"][-6:] != a["end"][-6:] for a in attacks if "end" in a), "an attack across a DST change"
    assert any("end" not in a for a in attacks), "an ongoing attack"
    reliefs = [{m.get("relief_2h") for m in e.get("medications", [])} for e in entries]
    assert any({True, False} <= r for r in reliefs), "one medicine that helped and one that did not"
    products = {d["product"] for e in entries for d in e.get("hydration", [])}
    assert {"MigraKet", "Liquid IV"} <= products
    assert any("infusion" in e for e in entries)


def test_out_ndjson_writes_one_bundle_per_entry() -> None:
    run = run_cli("map", "diary", str(DIARY / "month.ndjson"), "--out-ndjson")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert len(lines) == 30
    together = [e for line in lines for e in json.loads(line)["entry"]]
    assert together == json.loads(GOLDEN.read_text(encoding="utf-8"))["entry"]


def test_a_re_sent_month_keeps_its_identifiers() -> None:
    first = run_cli("map", "diary", str(DIARY / "month.csv")).json()
    again = run_cli("map", "diary", str(DIARY / "month.csv")).json()
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in again["entry"]]
    # A QuestionnaireResponse has one identifier (R4), the other resources a list.
    values = [identifiers(e["resource"])[0]["value"] for e in first["entry"]]
    assert len(values) == len(set(values))
