"""What the SMART app shows beside the month: the trend's months and figures, the attacks with
their features, the chart (pygal, no script) and the page it is part of."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import pytest

from fhir_migraine import operations
from fhir_migraine.clinical.months import Month
from fhir_migraine.inputs.diary_files import Located
from fhir_migraine.mapping import summary
from fhir_migraine.report import app_view, render
from fhir_migraine.report.chart import trend_svg
from tests.conftest import EXAMPLES

MADE = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def diary(name: str) -> list:
    entries = json.loads((EXAMPLES / "diary" / name).read_text())
    return operations.load_diary(Located(e, f"$[{i}]") for i, e in enumerate(entries))


@pytest.mark.parametrize(("first", "count"), [
    pytest.param(None, 6, id="no-entries"),
    pytest.param(date(2026, 11, 3), 6, id="a-new-diary-shows-six"),
    pytest.param(date(2026, 3, 1), 9, id="back-to-the-first-month"),
    pytest.param(date(2024, 1, 1), 12, id="at-most-twelve"),
])
def test_the_trend_shows_six_to_twelve_months_ending_at_the_month(first: date | None, count: int) -> None:
    months = app_view.months_back(Month(2026, 11), first)
    assert len(months) == count and months[-1] == Month(2026, 11)
    assert all(b.previous() == a for a, b in zip(months, months[1:], strict=False))
    assert [str(m) for m in months] == sorted(str(m) for m in months)


def test_the_trend_figures_are_the_summary_of_each_month() -> None:
    entries = diary("overuse.json")
    rows = app_view.trend(entries, Month(2026, 10))
    assert [r["month"] for r in rows][-3:] == ["2026-08", "2026-09", "2026-10"]
    for row in rows:
        year, month = map(int, row["month"].split("-"))
        last = date(year + month // 12, month % 12 + 1, 1).toordinal() - 1
        figures = summary.summarize(entries, date(year, month, 1), date.fromordinal(last))
        assert (row["headache_days"], row["migraine_days"], row["acute_medication_days"]) == (
            figures["headache_days"], figures["migraine_days"], figures["acute_medication_days"])
        assert row["reaches"] == [t for t in app_view.THRESHOLDS if figures["acute_medication_days"] >= t]
    assert any(10 in r["reaches"] for r in rows)


def test_the_thresholds_are_those_of_ichd3_8_2() -> None:
    assert app_view.THRESHOLDS == (10, 15)
    assert set(app_view.THRESHOLD_NAMES) == set(app_view.THRESHOLDS)


def test_the_attacks_carry_their_features_and_the_criteria_met() -> None:
    entries = diary("month.json")
    view = operations.report_view(entries, [], "2026-11", made_at=MADE)
    rows = app_view.attacks(entries, view)
    assert len(rows) == view["figures"]["attacks"]
    with_features = [r for r in rows if r["features"]]
    assert with_features and all(isinstance(f, str) for r in rows for f in r["features"])
    assert any(r["meets"] for r in rows)
    for row, found in zip(rows, view["attacks"], strict=True):
        met = {c["code"] for i in found["interpretations"] for c in i["criteria"] if c["status"] == "met"}
        assert set(row["meets"]) == met
        assert len(row["readings"]) == len(found["interpretations"])
    assert sum(1 for r in rows if r["aura"]) == view["figures"]["attacks_with_aura"]
    assert [r["began"] for r in rows] == [f"{a['start'][:10]} {a['start'][11:16]}" for a in view["attacks"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", r["began"]) for r in rows)


def test_the_chart_carries_no_script_and_draws_both_thresholds() -> None:
    rows = app_view.trend(diary("overuse.json"), Month(2026, 10))
    svg = trend_svg(rows)
    assert svg.startswith("<svg") and "<script" not in svg and "http://kozea" not in svg.replace("<!--http://", "")
    assert "Overuse threshold 10 days" in svg and "Overuse threshold 15 days" in svg
    assert all(r["label"] in svg for r in rows)


def test_the_app_page_agrees_with_the_view_and_links_the_months() -> None:
    entries = diary("month.json")
    view = operations.report_view(entries, [], "2026-11", made_at=MADE)
    links = {"previous": "/smart/s/x/2026-10", "previous_name": "October 2026", "next": None, "next_name": "December 2026",
             "latest": "/smart/s/x/2026-11"}
    page = render.app_html(view, trend=app_view.trend(entries, Month(2026, 11)), attacks=app_view.attacks(entries, view),
                           links=links, left_out=["Observation/9 breaks its profile and is not shown"])
    assert page.count('data-headache="yes"') == view["figures"]["headache_days"]
    assert 'href="#main"' in page and 'id="main"' in page and 'id="previous-month"' in page and 'id="next-month"' not in page
    assert "<script" not in page and "Observation/9 breaks its profile" in page
    assert re.search(r'<div class="chart" role="img" aria-label="[^"]+">', page)
    assert page.count("<tr data-month=") == len(app_view.trend(entries, Month(2026, 11)))


def test_the_state_pages_escape_what_they_say() -> None:
    page = render.state_html("error", "The app cannot open", "<b>bad</b>", status=400, problems=["$.state: <i>x</i>"])
    assert "<b>bad</b>" not in page and "&lt;b&gt;bad&lt;/b&gt;" in page and "&lt;i&gt;" in page
    assert 'data-state="error"' in page and 'role="alert"' in page
    loading = render.state_html("loading", "Opening the diary", "Reading", next_url="/smart/s/abc/")
    assert 'http-equiv="refresh" content="0; url=/smart/s/abc/"' in loading and 'href="/smart/s/abc/"' in loading
