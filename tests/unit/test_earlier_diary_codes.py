"""Diary values that moved from the project's code to a standard one are still read when an EHR
holds them with the earlier code: the resource conforms, and unmap gives back the same value."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from fhir_migraine import operations, terminology
from fhir_migraine.validation.issues import has_errors

ROOT = Path(__file__).resolve().parents[2]
EARLIER = {("location", "unilateral"): ("103006007", "unilateral"), ("triggers", "stress"): ("73595000", "stress")}


def test_each_moved_value_keeps_its_earlier_code() -> None:
    for (kind, value), (now, before) in EARLIER.items():
        assert terminology.diary_code(kind, value).code == now
        assert [c.code for c in terminology.diary_earlier_codes(kind, value)] == [before]
        assert terminology.diary_value(kind, terminology.DIARY_CS, before) == value
        assert terminology.diary_value(kind, terminology.SNOMED, now) == value
    assert terminology.diary_value("triggers", terminology.DIARY_CS, "no-such-code") is None


def test_a_diary_written_with_the_earlier_codes_conforms_and_unmaps_the_same() -> None:
    bundle = json.loads((ROOT / "examples/diary/month.bundle.json").read_text(encoding="utf-8"))
    earlier = copy.deepcopy(bundle)
    replaced = 0
    for entry in earlier["entry"]:
        for component in entry["resource"].get("component", []):
            for coding in component.get("valueCodeableConcept", {}).get("coding", []):
                for (_, _), (now, before) in EARLIER.items():
                    if coding["system"] == terminology.SNOMED and coding["code"] == now:
                        coding.update(system=terminology.DIARY_CS, code=before)
                        replaced += 1
    assert replaced >= 2, "the example month records a unilateral attack and a stress trigger"
    for entry in earlier["entry"]:
        assert not has_errors(operations.validate(entry["resource"])), entry["resource"]["identifier"]
    assert operations.unmap(earlier) == operations.unmap(bundle)
