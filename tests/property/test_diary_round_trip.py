"""Generated diary entries (extreme times and offsets, empty lists, long notes in any script)
map to FHIR R4 that parses, and unmap to the same entries."""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_migraine import operations
from fhir_migraine.inputs.diary_files import Located, read_text
from tests.conftest import examples
from tests.diary_strategies import diary_entry

ROUND_TRIP = settings(max_examples=examples(350), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@ROUND_TRIP
@given(st.lists(diary_entry(), min_size=1, max_size=3, unique_by=lambda p: p[0]["entry_id"]))
def test_generated_entries_map_to_fhir_and_back(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    raw = [p[0] for p in pairs]
    bundle = operations.map_diary([Located(e, f"$[{i}]") for i, e in enumerate(raw)])
    Bundle.model_validate(bundle)
    assert operations.unmap(bundle)["diary"] == [p[1] for p in pairs]

    # The same entries as NDJSON give the very same Bundle, and a searchset in reverse too.
    ndjson = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in raw)
    assert operations.map_diary(read_text(ndjson, "ndjson")) == bundle
    searchset = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": e["resource"]} for e in reversed(bundle["entry"])]}
    assert sorted(operations.unmap(searchset)["diary"], key=lambda e: e["entry_id"]) == sorted(
        (p[1] for p in pairs), key=lambda e: e["entry_id"]
    )


def test_a_no_break_space_inside_a_text_is_kept_and_the_fhir_parses() -> None:
    entry = {"entry_id": "nbsp", "patient": {"reference": "Patient/123"}, "date": "2026-11-20", "headache": None,
             "hydration": [{"product": "Liquid\xa0IV", "volume": "500 mL", "taken_at": "2026-11-20T08:00:00+01:00"}],
             "notes": "\xa0slept badly\u3000"}
    bundle = operations.map_diary([Located(entry, "$")])
    Bundle.model_validate(bundle)
    assert operations.unmap(bundle)["diary"] == [entry]
