"""The diary summary over generated diaries: it never fails on a valid diary, its headache days
are the days an independent count of the attacks' times gives, and its figures are consistent."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_migraine import operations
from fhir_migraine.inputs.diary_files import Located
from tests.diary_strategies import diary_entry


def local_days(attack: dict[str, Any]) -> set[date]:
    """The local days (in the start's offset) an attack covers, walked an hour at a time from its
    start, then its last moment; as the summary, at most 366 days from the start's day."""
    start = datetime.fromisoformat(attack["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(attack["end"].replace("Z", "+00:00")) if "end" in attack else start
    days = {start.date()}
    moment = start
    while moment < end and (moment.date() - start.date()).days < 366:
        days.add(moment.date())
        if end - moment <= timedelta(hours=1):
            days.add((end - timedelta(microseconds=1)).astimezone(start.tzinfo).date())
            break
        moment += timedelta(hours=1)
    return {d for d in days if (d - start.date()).days < 366}


@settings(max_examples=150, deadline=None)
@given(st.lists(diary_entry(), min_size=1, max_size=6, unique_by=lambda pair: pair[0]["entry_id"]))
def test_a_summary_of_any_valid_diary_counts_the_days_its_attacks_cover(pairs: list[Any]) -> None:
    entries = [raw for raw, _ in pairs]
    for raw in entries:
        raw["patient"] = {"reference": "Patient/1"}
    loaded = operations.load_diary(Located(e, f"$[{i}]") for i, e in enumerate(entries))
    found = operations.diary_summary(loaded, first="0001-01-01", last="9999-12-31")
    # Every attack of the entries, of `headache` or `attacks` (generated diaries continue none).
    attacks = [a for e in entries for a in ([e["headache"]] if isinstance(e.get("headache"), dict) else e.get("attacks", []))]
    covered = set().union(*(local_days(a) for a in attacks)) if attacks else set()
    assert found["headache_days"] == len(covered)
    assert found["migraine_days"] <= found["headache_days"]
    assert found["attacks"] == len(attacks)
    assert found["attacks_with_aura"] <= found["attacks"]
    assert found["acute_medication_days"] <= sum(found["medication_days_by_class"].values())
    assert found["days_recorded"] == len({e["date"] for e in entries})
