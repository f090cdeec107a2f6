"""Generated diary entries (extreme times and offsets, empty lists, long notes in any script)
map to FHIR R4 that parses, and unmap to the same entries."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_migraine import operations
from fhir_migraine.inputs.diary_files import Located, read_text
from tests.conftest import examples
from tests.diary_strategies import OFFSETS, diary_entry

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


@st.composite
def continued_attack(draw: Any) -> list[dict[str, Any]]:
    """An attack with an id, a later entry continuing it, and an entry that records no attack on a
    day the attack runs into (headache-free, or not recorded)."""
    patient = {"reference": f"Patient/{draw(st.integers(1, 10**6))}"}
    offset = timezone(timedelta(minutes=draw(OFFSETS)))
    start = draw(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(offset)))
    start = start.replace(microsecond=0)
    first: dict[str, Any] = {"entry_id": "c-1", "patient": patient, "date": start.date().isoformat(),
                             "attacks": [{"id": "a7", "start": start.isoformat(), **draw(st.sampled_from([{}, {"peak_intensity": 6}]))}]}
    again = start + timedelta(minutes=draw(st.integers(0, 60 * 30)))
    record: dict[str, Any] = {"continues": "a7", "start": again.isoformat()}
    end = again
    if draw(st.booleans()):
        end = again + timedelta(minutes=draw(st.integers(0, 60 * 30)))
        record["end"] = end.isoformat()
    second = {"entry_id": "c-2", "patient": patient, "date": again.date().isoformat(), "attacks": [record]}
    last_day = (end - timedelta(microseconds=1)).date() if end > start else start.date()
    day = start.date() + timedelta(days=draw(st.integers(0, (last_day - start.date()).days)))
    third: dict[str, Any] = {"entry_id": "c-3", "patient": patient, "date": day.isoformat()}
    if draw(st.booleans()):
        third["headache"] = None
    return [first, second, third]


@ROUND_TRIP
@given(continued_attack())
def test_a_continued_attack_and_a_day_it_runs_into_map_to_fhir_and_back(entries: list[dict[str, Any]]) -> None:
    bundle = operations.map_diary([Located(e, f"$[{i}]") for i, e in enumerate(entries)])
    Bundle.model_validate(bundle)
    days = [e["resource"] for e in bundle["entry"] if e["resource"]["identifier"][0]["value"] in ("c-1", "c-2", "c-3")]
    assert [d["valueBoolean"] for d in days] == [True, True, True]
    assert operations.unmap(bundle)["diary"] == entries
    figures = operations.diary_summary(operations.load_diary(Located(e, f"$[{i}]") for i, e in enumerate(entries)))
    assert figures["attacks"] == 1
