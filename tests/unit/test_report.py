"""The monthly report: its calendar agrees with the summary, its PDF is one or two pages that say
the month's figures and render every script of the notes, and its DocumentReference files it once
per content."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fhir_migraine import operations, validation
from fhir_migraine.errors import InputError
from fhir_migraine.inputs.diary_files import iter_entries
from fhir_migraine.mapping.report_document import report_value, reports_in
from fhir_migraine.report import render

ROOT = Path(__file__).resolve().parents[2]
MADE = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def tool(name: str) -> str:
    """A program of poppler-utils the set-up installs: required in CI, skipped where it is missing."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} (poppler-utils) is missing: scripts/setup installs it")
        pytest.skip(f"{name} (poppler-utils) is not installed")
    return found


def example_month() -> list:
    with open(ROOT / "examples/diary/month.json", encoding="utf-8") as diary:
        return operations.load_diary(iter_entries(diary, "json"))


@pytest.fixture(scope="module")
def november() -> operations.MonthlyReport:
    return operations.render_report(operations.report_view(example_month(), [], "2026-11", made_at=MADE))


def headache_cells(view: dict) -> list[str]:
    return [day["date"] for week in view["weeks"] for day in week if day["in_month"] and day["headache"]]


@pytest.mark.parametrize("month", ["2026-10", "2026-11"])
def test_the_calendar_shows_the_summary_headache_days(month: str) -> None:
    entries = example_month()
    view = operations.report_view(entries, [], month, made_at=MADE)
    figures = operations.diary_summary(entries, month=month)
    assert len(headache_cells(view)) == figures["headache_days"]
    assert sum(1 for week in view["weeks"] for day in week if day["in_month"] and day["migraine"]) == figures["migraine_days"]
    page = render.html(view)
    assert page.count('data-headache="yes"') == figures["headache_days"]


def test_the_example_november_by_hand() -> None:
    # Counted by hand from examples/diary/month.json: attacks on 1 Nov (running from 31 Oct), 8, 11
    # and 16 Nov; triptans on 1 and 16 Nov, a gepant on 11 Nov; the preventive infusion on 4 Nov.
    view = operations.report_view(example_month(), [], "2026-11", made_at=MADE)
    assert headache_cells(view) == ["2026-11-01", "2026-11-08", "2026-11-11", "2026-11-16"]
    days = {day["date"]: day for week in view["weeks"] for day in week if day["in_month"]}
    assert days["2026-11-01"]["classes"] == ["triptan"] and days["2026-11-11"]["classes"] == ["gepant"]
    assert days["2026-11-04"]["infusion"] and not days["2026-11-05"]["infusion"]
    assert days["2026-11-16"]["intensity"] == "severe" and days["2026-11-08"]["intensity"] == "mild"
    assert not days["2026-11-20"]["recorded"]
    assert view["midas"] == {"date": "2026-11-15", "total": 12, "grade": "III", "meaning": "moderate disability"}
    assert view["hit6"] == {"date": "2026-11-15", "total": 55, "impact": "some impact"}
    assert view["infusions_received"] == [{"date": "2026-11-04", "at": "2026-11-04T10:00:00-05:00",
                                           "protocol": "preventive-nutrient"}]


def test_the_pdf_is_one_or_two_pages_and_says_the_figures(november: operations.MonthlyReport, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(november.pdf)
    info = subprocess.run([tool("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]
    assert 1 <= pages <= 2
    text = subprocess.run([tool("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    figures = november.view["figures"]
    assert re.search(rf"Headache days\s+{figures['headache_days']}\s", text)
    assert re.search(rf"Migraine days\s+{figures['migraine_days']}\s", text)
    assert re.search(rf"Acute-medication days\s+{figures['acute_medication_days']}\s", text)
    assert "November 2026" in text and "Patient/123" in text
    assert "patient-reported headache diary" in text


def test_the_pdf_page_is_not_blank(november: operations.MonthlyReport, tmp_path: Path) -> None:
    from PIL import Image

    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(november.pdf)
    subprocess.run([tool("pdftoppm"), "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    image = Image.open(next(tmp_path.glob("page*.png"))).convert("L")
    dark = sum(count for value, count in enumerate(image.histogram()) if value < 128)
    assert dark > 0.01 * image.width * image.height, "the first page is (nearly) blank"


def test_notes_in_any_script_are_rendered(tmp_path: Path) -> None:
    # Scripts kept as written in the PDF's text layer; and scripts whose shaping joins or reorders
    # glyphs (the text layer then holds their letters in another order), checked letter by letter.
    kept = {"chinese": "头痛很严重", "russian": "болит голова", "greek": "πονοκέφαλος", "japanese": "頭痛がひどい"}
    shaped = {"Arabic": "صداع شديد", "Devanagari": "सिरदर्द", "Hebrew": "כאב ראש"}
    notes = " / ".join([*kept.values(), *shaped.values()])
    entries = [replace(e, notes=notes) if e.date == "2026-11-16" else e for e in example_month()]
    report = operations.render_report(operations.report_view(entries, [], "2026-11", made_at=MADE))
    pdf = tmp_path / "notes.pdf"
    pdf.write_bytes(report.pdf)
    text = re.sub(r"\s+", "", subprocess.run([tool("pdftotext"), str(pdf), "-"], capture_output=True, text=True,
                                              check=True).stdout)
    for script, words in kept.items():
        assert re.sub(r"\s+", "", words) in text, script
    for script, words in shaped.items():
        assert set(words) - {" "} <= set(text), script
    fonts = subprocess.run([tool("pdffonts"), str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "Noto-Sans-CJK" in fonts and "Noto-Sans-Devanagari" in fonts, fonts


def test_the_document_reference_files_the_pdf_and_the_html(november: operations.MonthlyReport) -> None:
    document = november.document
    assert validation.default_validator().validate(document)["issue"][0]["severity"] == "information"
    assert document["type"]["coding"][0]["code"] == "53576-5"
    assert document["subject"] == {"reference": "Patient/123"}
    assert document["context"]["period"] == {"start": "2026-11-01", "end": "2026-11-30"}
    pdf, page = (c["attachment"] for c in document["content"])
    assert pdf["contentType"] == "application/pdf" and base64.b64decode(pdf["data"]) == november.pdf
    assert page["contentType"] == "text/html" and base64.b64decode(page["data"]).decode() == november.html
    assert pdf["size"] == len(november.pdf)
    assert document["contained"][0]["resourceType"] == "Device" and document["author"][0]["reference"] == "#maker"
    assert "relatesTo" not in document


def test_the_same_data_make_the_same_identifier_and_other_data_another() -> None:
    entries = example_month()
    first = operations.report_view(entries, [], "2026-11", made_at=MADE)
    later = operations.report_view(entries, [], "2026-11", made_at=datetime(2026, 12, 9, tzinfo=UTC))
    assert report_value(first) == report_value(later), "the time it is made does not change which report it is"
    changed = [replace(e, notes="amended") if e.date == "2026-11-16" else e for e in entries]
    assert report_value(operations.report_view(changed, [], "2026-11", made_at=MADE)) != report_value(first)
    assert report_value(first).startswith("2026-11/")


def test_a_report_made_again_replaces_the_one_before() -> None:
    view = operations.report_view(example_month(), [], "2026-11", made_at=MADE)
    document = operations.render_report(view, replaces="DocumentReference/41").document
    assert document["relatesTo"] == [{"code": "replaces", "target": {"reference": "DocumentReference/41"}}]
    pulled = {"entry": [{"resource": {**document, "id": "42"}}, {"resource": {"resourceType": "Observation", "id": "1"}}]}
    assert reports_in(pulled) == [{"reference": "DocumentReference/42", "month": "2026-11",
                                   "identifier": document["identifier"][0]["value"], "date": document["date"],
                                   "status": "current", "replaces": ["DocumentReference/41"]}]


@pytest.mark.parametrize(("month", "message"), [
    ("2027-01", "has not begun yet"),
    ("2026-13", "is not a month"),
    ("2026-1", "is not a month"),
    ("November", "is not a month"),
])
def test_a_month_that_cannot_be_reported_is_refused_at_its_field(month: str, message: str) -> None:
    with pytest.raises(InputError) as refused:
        operations.report_view(example_month(), [], month, made_at=MADE)
    assert [p.path for p in refused.value.problems] == ["$.month"]
    assert message in refused.value.problems[0].message


def test_a_patient_with_no_diary_has_nothing_to_report() -> None:
    with pytest.raises(InputError) as refused:
        operations.report_view([], [], "2026-11", made_at=MADE)
    assert [p.path for p in refused.value.problems] == ["$.diary"]


def test_infusions_ordered_are_the_month_s_medication_requests() -> None:
    bundle = (ROOT / "examples/bundles/ed-migraine-rescue.bundle.json").read_text(encoding="utf-8")
    import json

    requests = [e["resource"] for e in json.loads(bundle)["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]
    entries = example_month()
    december = operations.report_view(entries, requests, "2026-12", made_at=MADE)
    november = operations.report_view(entries, requests, "2026-11", made_at=MADE)
    assert len(december["infusions_ordered"]) == len(requests) and november["infusions_ordered"] == []
    assert all(o["date"] == "2026-12-01" and o["dosage"] for o in december["infusions_ordered"])
    assert "ketorolac" in render.html(december).lower()
