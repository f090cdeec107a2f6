"""The CDS Hooks loop against the local HAPI test EHR, the service playing its part and the test
playing the EHR: order-select offers a protocol as draft orders, the EHR creates them, order-sign
checks them. No prefetch is sent: the service queries HAPI as the call's ``fhirServer``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fhir_migraine import operations
from fhir_migraine.api import create_app
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.inputs.diary_files import Located
from fhir_migraine.validation import default_validator
from tests.cdshooks import Ehr, rsa_key, trusting

SELECT = "migraine-order-select"
SIGN = "migraine-order-sign"
#: HAPI takes any token; the service must still send only this one.
DUMMY_AUTHORIZATION = {"access_token": "dummy-token-of-the-ehr", "token_type": "Bearer", "expires_in": 300,
                       "scope": "patient/*.read", "subject": "fhir-migraine-cds"}


@pytest.fixture
def service(settings, tmp_path):
    ehr = Ehr(rsa_key())
    app = create_app(trusting(settings, tmp_path, ehr))
    app.config["TESTING"] = True
    return app, ehr


def a_patient(ehr: FhirClient, run_id: str, weight_kg: float, now: datetime) -> str:
    patient = ehr.create({"resourceType": "Patient", "identifier": [{"system": "urn:test:cds", "value": run_id}],
                          "gender": "female", "birthDate": "1984-05-02"}).id
    assert patient is not None
    ehr.create({"resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                          "code": "vital-signs"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
                "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": (now - timedelta(days=1)).isoformat(),
                "valueQuantity": {"value": weight_kg, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}})
    return patient


def diary_with_triptan(ehr: FhirClient, run_id: str, patient: str, taken: datetime) -> None:
    """Today's diary entry: a migraine treated with sumatriptan at ``taken``, mapped by the project."""
    day = taken.date().isoformat()
    entry = {"entry_id": f"cds-{run_id}-{day}", "patient": {"reference": f"Patient/{patient}"}, "date": day,
             "headache": {"start": (taken - timedelta(hours=1)).isoformat(), "peak_intensity": 7,
                          "location": "unilateral", "quality": "pulsating", "worse_with_activity": True,
                          "symptoms": ["nausea"]},
             "medications": [{"drug": "sumatriptan", "dose": "50 mg", "route": "oral", "taken_at": taken.isoformat()}]}
    ehr.transaction(operations.map_diary([Located(entry)]))


def call(app, ehr: Ehr, service_id: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = app.test_client().post(f"/cds-services/{service_id}", json=body, headers=ehr.headers(service_id))
    assert answer.status_code == 200, answer.get_json()
    found: dict[str, Any] = answer.get_json()
    return found


def selected_dhe(patient: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "selected-1", "status": "draft", "intent": "order",
            "subject": {"reference": f"Patient/{patient}"},
            "medicationCodeableConcept": {"text": "dihydroergotamine"}}


def created_in_ehr(ehr: FhirClient, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an EHR does with an accepted suggestion: one transaction creating its resources, their
    references to each other rewritten to the new ids; the resources as the EHR now holds them."""
    entries = []
    for action in actions:
        assert action["type"] == "create"
        resource = dict(action["resource"])
        full_url = f"urn:uuid:{uuid.uuid4()}"
        old = f"{resource['resourceType']}/{resource.pop('id')}" if "id" in resource else None
        entries.append({"fullUrl": full_url, "resource": resource, "old": old,
                        "request": {"method": "POST", "url": resource["resourceType"]}})
    text = json.dumps([{k: v for k, v in e.items() if k != "old"} for e in entries])
    for e in entries:
        if e["old"]:
            text = text.replace(f'"{e["old"]}"', f'"{e["fullUrl"]}"')
    answer = ehr.transaction({"resourceType": "Bundle", "type": "transaction", "entry": json.loads(text)})
    held = []
    for item in answer["entry"]:
        kind, _, rest = item["response"]["location"].partition("/")
        read = ehr.read(kind, rest.split("/")[0]).resource
        assert read is not None
        held.append(read)
    return held


def test_order_select_then_the_ehr_creates_then_order_sign_warns_of_the_triptan(service, ehr: FhirClient, run_id) -> None:
    app, cds_client = service
    now = datetime.now(UTC).replace(microsecond=0)
    patient = a_patient(ehr, run_id, 70.0, now)
    diary_with_triptan(ehr, run_id, patient, now - timedelta(hours=3))
    access = {"fhirServer": ehr.base_url, "fhirAuthorization": DUMMY_AUTHORIZATION}

    selection = selected_dhe(patient)
    offered = call(app, cds_client, SELECT, {
        "hook": "order-select", "hookInstance": str(uuid.uuid4()), **access,
        "context": {"userId": "Practitioner/dr-1", "patientId": patient, "selections": ["MedicationRequest/selected-1"],
                    "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": selection}]}}})
    cards = [c for c in offered["cards"] if c.get("suggestions")]
    assert cards, offered
    dhe_card = next(c for c in cards if "dhe" in c["source"]["url"].lower() or "DHE" in c["summary"])
    actions = dhe_card["suggestions"][0]["actions"]
    drafts = [a["resource"] for a in actions]
    assert {r["resourceType"] for r in drafts} >= {"MedicationRequest"}
    assert all(r["status"] == "draft" for r in drafts if r["resourceType"] == "MedicationRequest")
    assert "70.0 kg" in dhe_card["detail"]  # the weight HAPI holds was read
    validator = default_validator()
    for resource in drafts:
        assert resource.get("meta", {}).get("profile"), resource["resourceType"]
        assert [i for i in validator.issues(resource) if i.severity in ("error", "fatal")] == [], resource["resourceType"]

    held = created_in_ehr(ehr, actions)
    orders = [r for r in held if r["resourceType"] == "MedicationRequest"]
    assert orders and all(r["subject"]["reference"] == f"Patient/{patient}" for r in orders)

    checked = call(app, cds_client, SIGN, {
        "hook": "order-sign", "hookInstance": str(uuid.uuid4()), **access,
        "context": {"userId": "Practitioner/dr-1", "patientId": patient,
                    "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                    "entry": [{"resource": r} for r in orders]}}})
    spacing = [c for c in checked["cards"] if "sumatriptan" in c["summary"].lower()]
    assert spacing, [c["summary"] for c in checked["cards"]]
    assert spacing[0]["indicator"] == "critical"
    assert spacing[0]["source"]["url"].startswith("http")


def test_order_sign_without_the_triptan_in_the_diary_raises_no_spacing_card(service, ehr: FhirClient, run_id) -> None:
    app, cds_client = service
    now = datetime.now(UTC).replace(microsecond=0)
    patient = a_patient(ehr, run_id, 70.0, now)
    order = {**selected_dhe(patient), "authoredOn": now.isoformat()}
    checked = call(app, cds_client, SIGN, {
        "hook": "order-sign", "hookInstance": str(uuid.uuid4()), "fhirServer": ehr.base_url,
        "fhirAuthorization": DUMMY_AUTHORIZATION,
        "context": {"userId": "Practitioner/dr-1", "patientId": patient,
                    "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}}})
    assert not [c for c in checked["cards"] if "triptan" in c["summary"].lower()]
    # Every prefetch was had from HAPI: no card says a check could not run.
    assert not [c for c in checked["cards"] if "could not" in c["summary"].lower()], checked["cards"]
