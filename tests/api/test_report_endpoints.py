"""POST /patients/{ref}/reports and GET /patients/{ref}/report through Flask's test client, the
EHR a fake HTTP layer serving the example month: the report's figures are the summary's, it is
queued as a DocumentReference, and a month that cannot be reported, a patient with no diary or a
format that does not exist is a clear 4xx (the month checked before the EHR is asked anything)."""

from __future__ import annotations

import base64

import pytest

from fhir_migraine.api import services_of
from fhir_migraine.config import Settings
from tests.api.test_pull_endpoints import client_with
from tests.fakehttp import MONTH, PATIENT, FakeEhrSession


def test_a_report_is_queued_with_the_figures_of_the_summary(settings: Settings) -> None:
    client = client_with(settings, FakeEhrSession(MONTH))
    answer = client.post(f"/patients/{PATIENT}/reports?month=2026-10")
    assert answer.status_code == 202, answer.get_json()
    found = answer.get_json()
    summary = client.get(f"/patients/{PATIENT}/summary?month=2026-10").get_json()
    assert found["figures"]["headache_days"] == summary["headache_days"] == 4
    assert found["figures"]["acute_medication_days"] == summary["acute_medication_days"]
    assert found["state"] == "pending" and found["replaces"] is None
    assert found["identifier"]["value"].startswith("2026-10/")
    assert client.get(answer.headers["Location"]).get_json()["kind"] == "report"
    gateway = services_of(client.application).gateway
    assert gateway is not None
    item = gateway.outbox.get(found["outbox_id"])
    assert item is not None
    [document] = [e["resource"] for part in item.parts for e in part["entry"]]
    assert document["resourceType"] == "DocumentReference" and document["identifier"] == [found["identifier"]]
    assert base64.b64decode(document["content"][0]["attachment"]["data"]).startswith(b"%PDF")


@pytest.mark.parametrize(("kind", "type_", "start"), [("pdf", "application/pdf", b"%PDF"), ("html", "text/html", b"<!DOCTYPE html>")])
def test_a_report_can_be_seen_without_filing_it(settings: Settings, kind: str, type_: str, start: bytes) -> None:
    client = client_with(settings, FakeEhrSession(MONTH))
    answer = client.get(f"/patients/{PATIENT}/report?month=2026-10&format={kind}")
    assert answer.status_code == 200
    assert answer.mimetype == type_ and answer.data.startswith(start)
    assert client.get("/outbox").get_json()["items"] == []


@pytest.mark.parametrize(("query", "path"), [
    ("month=2031-01", "$.month"),  # not begun yet
    ("month=2026-13", "$.month"),
    ("month=10-2026", "$.month"),
    ("", "$.month"),
])
def test_a_month_that_cannot_be_reported_is_a_422_before_the_ehr_is_asked(settings: Settings, query: str, path: str) -> None:
    session = FakeEhrSession(MONTH)
    client = client_with(settings, session)
    for answer in (client.post(f"/patients/{PATIENT}/reports?{query}"), client.get(f"/patients/{PATIENT}/report?{query}")):
        assert answer.status_code == 422, answer.get_json()
        assert [e["path"] for e in answer.get_json()["errors"]] == [path]
    assert session.sent == []


def test_an_unknown_format_is_a_422(settings: Settings) -> None:
    answer = client_with(settings, FakeEhrSession(MONTH)).get(f"/patients/{PATIENT}/report?month=2026-10&format=docx")
    assert answer.status_code == 422 and [e["path"] for e in answer.get_json()["errors"]] == ["$.format"]


def test_a_patient_with_no_diary_is_a_404(settings: Settings) -> None:
    client = client_with(settings, FakeEhrSession([]))
    answer = client.post(f"/patients/{PATIENT}/reports?month=2026-10")
    assert answer.status_code == 404
    assert "no diary entries" in answer.get_json()["detail"]
