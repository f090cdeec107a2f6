"""The monthly report against a real HAPI server: made from the diary and orders HAPI holds, filed
as a DocumentReference that HAPI takes, once after two identical requests, pulled back; made
again from changed data, it is a new document that replaces the first."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from fhir_migraine.config import EhrSettings, OutboxSettings
from fhir_migraine.identifiers import REPORT_SYSTEM
from tests.integration.conftest import count_by_identifier
from tests.integration.helpers import example_diary, example_orders, running_service, wait_until_settled

pytestmark = pytest.mark.ehr


@pytest.fixture
def service(ehr_url: str, settings, tmp_path: Path):
    with running_service(settings, EhrSettings(url=ehr_url, transaction_size=40), OutboxSettings(retry_base=0.1)) as client:
        yield client


def test_the_report_is_filed_once_pulled_back_and_replaced_when_the_data_change(service, ehr, run_id: str) -> None:
    patient = f"Patient/it-{run_id}"
    diary = example_diary(run_id, patient)
    ids = [service.post("/orders", json=o).get_json()["outbox_id"] for o in example_orders(run_id, patient)]
    ids.append(service.post("/diary", json=diary).get_json()["outbox_id"])
    assert {s["state"] for s in wait_until_settled(service, ids).values()} == {"sent"}

    first = service.post(f"/patients/{patient}/reports?month=2026-11")
    assert first.status_code == 202, first.get_json()
    summary = service.get(f"/patients/{patient}/summary?month=2026-11").get_json()
    assert first.get_json()["figures"]["headache_days"] == summary["headache_days"]
    assert wait_until_settled(service, [first.get_json()["outbox_id"]])[first.get_json()["outbox_id"]]["state"] == "sent"
    value = first.get_json()["identifier"]["value"]

    again = service.post(f"/patients/{patient}/reports?month=2026-11")
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["state"] == "filed" and again.get_json()["identifier"]["value"] == value
    assert count_by_identifier(ehr, "DocumentReference", REPORT_SYSTEM, value) == 1

    pulled = service.get(f"/patients/{patient}/diary").get_json()
    assert pulled["invalid"] == []
    reference = again.get_json()["document"]
    held = ehr.read("DocumentReference", reference.split("/")[1]).resource
    assert held["subject"] == {"reference": patient}
    assert base64.b64decode(held["content"][0]["attachment"]["data"]).startswith(b"%PDF")

    # The patient records one more day of November: the report made now replaces the first.
    extra = {"entry_id": f"p123-2026-11-29-{run_id}", "patient": {"reference": patient}, "date": "2026-11-29", "headache": None}
    added = service.post("/diary", json=extra).get_json()["outbox_id"]
    assert wait_until_settled(service, [added])[added]["state"] == "sent"
    replaced = service.post(f"/patients/{patient}/reports?month=2026-11")
    assert replaced.status_code == 202
    assert replaced.get_json()["replaces"] == reference
    assert replaced.get_json()["identifier"]["value"] != value
    wait_until_settled(service, [replaced.get_json()["outbox_id"]])
