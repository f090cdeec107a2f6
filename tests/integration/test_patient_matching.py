"""An MRN-only order against the real test EHR: it lands on the one Patient carrying the MRN, as the
literal ``Patient/<id>`` in every resource, and comes back by ``pull --patient identifier=...``; an
MRN no Patient has yet waits, and goes once the patient is registered."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from fhir_migraine.cli import main
from fhir_migraine.config import EhrSettings, OutboxSettings, Settings
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.identifiers import ORDER_SYSTEM
from tests.integration.helpers import example_orders, running_service, wait_until_settled

pytestmark = pytest.mark.ehr

SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.1"


def register(ehr_url: str, mrn: str) -> str:
    """POST a Patient carrying the MRN (a plain create, as a registration system would); its id."""
    patient = {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": mrn}],
               "name": [{"family": "Test", "given": ["Matching"]}]}
    answer = requests.post(f"{ehr_url}/Patient", json=patient, timeout=30,
                           headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def mrn_order(run_id: str, mrn: str) -> dict[str, Any]:
    order = next(o for o in example_orders(run_id, "Patient/unused") if o["protocol"] == "status-migrainosus")
    order["patient"] = {"identifier": {"system": SYSTEM, "value": mrn}}
    return order


def stored_order(ehr: FhirClient, order_id: str) -> list[dict[str, Any]]:
    """The RequestGroup of the order and every MedicationRequest it lists, as the EHR holds them."""
    groups = [e["resource"] for page in ehr.search("RequestGroup", {"identifier": f"{ORDER_SYSTEM}|{order_id}"})
              for e in page.get("entry", [])]
    assert len(groups) == 1, groups
    requests_ = [ehr.get_page(f"{ehr.base_url}/{a['resource']['reference']}").bundle
                 for a in groups[0]["action"] if "resource" in a]
    assert requests_ and all(r["resourceType"] == "MedicationRequest" for r in requests_)
    return [groups[0], *requests_]


@pytest.fixture
def service(ehr_url: str, settings: Settings):
    outbox = OutboxSettings(retry_base=0.2, retry_cap=0.5)
    with running_service(settings, EhrSettings(url=ehr_url), outbox) as client:
        yield client


def test_an_mrn_only_order_lands_on_the_literal_patient_and_is_pulled_back_by_identifier(
    service, ehr: FhirClient, ehr_url: str, run_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mrn = f"MRN-{run_id}"
    pid = register(ehr_url, mrn)
    order = mrn_order(run_id, mrn)
    item_id = service.post("/orders", json=order).get_json()["outbox_id"]
    settled = wait_until_settled(service, [item_id])[item_id]
    assert settled["state"] == "sent", settled
    assert settled["patients_resolved"] == {f"{SYSTEM}|{mrn}": f"Patient/{pid}"}

    for resource in stored_order(ehr, order["order_id"]):
        assert resource["subject"] == {"reference": f"Patient/{pid}"}, resource["resourceType"]

    monkeypatch.setenv("FHIR_MIGRAINE_DB", str(tmp_path / "pull.sqlite3"))
    out, err = io.StringIO(), io.StringIO()
    code = main(["pull", "--ehr", ehr_url, "--patient", f"identifier={SYSTEM}|{mrn}", "--unmap"], out=out, err=err)
    assert code == 0, err.getvalue()
    (pulled,) = json.loads(out.getvalue())["orders"]
    assert (pulled["order_id"], pulled["patient"]) == (order["order_id"], {"reference": f"Patient/{pid}"})
    # The service knows the protocols, so it reads the order back exactly (the patient now literal).
    (through_api,) = service.get(f"/patients/{quote(f'identifier={SYSTEM}|{mrn}', safe='=')}/orders").get_json()["orders"]
    assert through_api == {**order, "patient": {"reference": f"Patient/{pid}"}}


def test_an_order_for_an_mrn_not_yet_registered_waits_then_goes(service, ehr: FhirClient, ehr_url: str,
                                                                run_id: str) -> None:
    mrn = f"MRN-late-{run_id}"
    order = mrn_order(run_id, mrn)
    item_id = service.post("/orders", json=order).get_json()["outbox_id"]
    deadline = time.time() + 30
    while (summary := service.get(f"/outbox/{item_id}").get_json()).get("last_error") is None:
        assert time.time() < deadline, summary
        time.sleep(0.1)
    assert summary["state"] in ("pending", "sending") and summary["last_error"]["type"] == "PatientUnknown"
    assert f"no Patient in the EHR has the identifier {SYSTEM}|{mrn}" in summary["last_error"]["message"]
    assert not list(ehr.search("RequestGroup", {"identifier": f"{ORDER_SYSTEM}|{order['order_id']}"}))[0].get("entry")

    pid = register(ehr_url, mrn)
    settled = wait_until_settled(service, [item_id], timeout=60)[item_id]
    assert settled["state"] == "sent", settled
    assert all(r["subject"] == {"reference": f"Patient/{pid}"} for r in stored_order(ehr, order["order_id"]))


def test_an_mrn_two_patients_carry_is_dead_and_writes_nothing(service, ehr: FhirClient, ehr_url: str,
                                                              run_id: str) -> None:
    mrn = f"MRN-twice-{run_id}"
    register(ehr_url, mrn), register(ehr_url, mrn)
    order = mrn_order(run_id, mrn)
    item_id = service.post("/orders", json=order).get_json()["outbox_id"]
    settled = wait_until_settled(service, [item_id], timeout=60)[item_id]
    assert settled["state"] == "dead" and settled["last_error"]["type"] == "PatientAmbiguous"
    assert settled["last_error"]["message"].startswith("2 Patients in the EHR have the identifier")
    assert not list(ehr.search("RequestGroup", {"identifier": f"{ORDER_SYSTEM}|{order['order_id']}"}))[0].get("entry")
