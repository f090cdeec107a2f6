"""The CDS Hooks loop against the local HAPI test EHR, the service playing its part and the test
playing the EHR: order-select offers a protocol as draft orders, the EHR creates them, order-sign
checks them. No prefetch is sent: the service queries HAPI as the call's ``fhirServer``."""

from __future__ import annotations

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
NOT_RUN = "Check not run"  # the summary of a rule's card when a prefetch it needs could not be had
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


def a_patient(ehr: FhirClient, run_id: str, weight_kg: float, now: datetime, birth_date: str = "1984-05-02") -> str:
    patient = ehr.create({"resourceType": "Patient", "identifier": [{"system": "urn:test:cds", "value": run_id}],
                          "gender": "female", "birthDate": birth_date}).id
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


def created_in_ehr(ehr: FhirClient, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an EHR does with an accepted suggestion: its actions as one FHIR transaction on the
    EHR's base (cds-hooks/docs#610), each resource's fullUrl its ``Type/id`` there, so the
    references between them (``Type/id``) resolve to the ids the EHR gives; the resources as the
    EHR now holds them."""
    entries = []
    for action in actions:
        assert action["type"] == "create"
        resource = action["resource"]
        entries.append({"fullUrl": f"{ehr.base_url}/{resource['resourceType']}/{resource['id']}", "resource": resource,
                        "request": {"method": "POST", "url": resource["resourceType"]}})
    answer = ehr.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    held = []
    for item in answer["entry"]:
        kind, _, rest = item["response"]["location"].partition("/")
        read = ehr.read(kind, rest.split("/")[0]).resource
        assert read is not None
        held.append(read)
    return held


def selected(patient: str, drug: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": "selected-1", "status": "draft", "intent": "order",
            "subject": {"reference": f"Patient/{patient}"}, "medicationCodeableConcept": {"text": drug}}


def offered_and_created(app, cds_client: Ehr, ehr: FhirClient, patient: str, drug: str, protocol: str,
                        weight_kg: float) -> list[dict[str, Any]]:
    """order-select for a selected ``drug``; the card of ``protocol`` checked (draft orders valid
    against the profiles, doses for the weight HAPI holds); its suggestion created in HAPI as an
    EHR would; the MedicationRequests HAPI now holds."""
    offered = call(app, cds_client, SELECT, {
        "hook": "order-select", "hookInstance": str(uuid.uuid4()), "fhirServer": ehr.base_url,
        "fhirAuthorization": DUMMY_AUTHORIZATION,
        "context": {"userId": "Practitioner/dr-1", "patientId": patient, "selections": ["MedicationRequest/selected-1"],
                    "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                    "entry": [{"resource": selected(patient, drug)}]}}})
    [card] = [c for c in offered["cards"] if c["source"]["url"].rstrip("/").endswith(f"/{protocol}")]
    assert card["indicator"] == "info" and card["selectionBehavior"] == "at-most-one"
    assert f"{weight_kg:.1f} kg" in card["detail"]  # the weight HAPI holds was read
    actions = card["suggestions"][0]["actions"]
    drafts = [a["resource"] for a in actions]
    assert {r["resourceType"] for r in drafts} >= {"MedicationRequest", "RequestGroup"}
    assert all(r["status"] == "draft" for r in drafts if r["resourceType"] in ("MedicationRequest", "RequestGroup"))
    validator = default_validator()
    for resource in drafts:
        assert resource.get("meta", {}).get("profile"), resource["resourceType"]
        assert [i for i in validator.issues(resource) if i.severity in ("error", "fatal")] == [], resource["resourceType"]
    held = created_in_ehr(ehr, actions)
    orders = [r for r in held if r["resourceType"] == "MedicationRequest"]
    assert orders and all(r["subject"]["reference"] == f"Patient/{patient}" and r["id"] for r in orders)
    [group] = [r for r in held if r["resourceType"] == "RequestGroup"]
    linked = {a["resource"]["reference"] for a in group.get("action", []) if "resource" in a}
    assert linked and linked <= {f"MedicationRequest/{r['id']}" for r in orders}  # rewritten to the EHR's ids
    return orders


def signed(app, cds_client: Ehr, ehr: FhirClient, patient: str, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """order-sign of ``orders`` as draftOrders, without prefetch: the service queries HAPI."""
    checked = call(app, cds_client, SIGN, {
        "hook": "order-sign", "hookInstance": str(uuid.uuid4()), "fhirServer": ehr.base_url,
        "fhirAuthorization": DUMMY_AUTHORIZATION,
        "context": {"userId": "Practitioner/dr-1", "patientId": patient,
                    "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                    "entry": [{"resource": r} for r in orders]}}})
    cards: list[dict[str, Any]] = checked["cards"]
    # Every prefetch key was had from HAPI: no card says a check could not run.
    assert not [c for c in cards if c["summary"].startswith(NOT_RUN)], [c["summary"] for c in cards]
    return cards


def test_ketorolac_protocol_offered_created_then_signed_for_an_older_patient(service, ehr: FhirClient, run_id) -> None:
    app, cds_client = service
    now = datetime.now(UTC).replace(microsecond=0)
    patient = a_patient(ehr, run_id, 72.0, now, birth_date="1950-02-01")
    orders = offered_and_created(app, cds_client, ehr, patient, "ketorolac", "ed-migraine-rescue", 72.0)
    cards = signed(app, cds_client, ehr, patient, orders)
    [lower] = [c for c in cards if "ketorolac" in c["summary"].lower() and "15 mg" in c["summary"]]
    assert lower["indicator"] == "warning"
    assert lower["source"]["url"].startswith("https://")
    [fix] = lower["suggestions"]
    [action] = fix["actions"]
    assert action["type"] == "update" and action["resource"]["id"] in {r["id"] for r in orders}


def test_ketorolac_protocol_signed_for_a_younger_patient_raises_no_dose_card(service, ehr: FhirClient, run_id) -> None:
    app, cds_client = service
    now = datetime.now(UTC).replace(microsecond=0)
    patient = a_patient(ehr, run_id, 72.0, now, birth_date="1990-02-01")
    orders = offered_and_created(app, cds_client, ehr, patient, "ketorolac", "ed-migraine-rescue", 72.0)
    cards = signed(app, cds_client, ehr, patient, orders)
    assert not [c for c in cards if "ketorolac" in c["summary"].lower() and "15 mg" in c["summary"]]


def test_dhe_protocol_offered_created_then_signed_after_a_triptan_in_the_diary(service, ehr: FhirClient, run_id) -> None:
    app, cds_client = service
    now = datetime.now(UTC).replace(microsecond=0)
    patient = a_patient(ehr, run_id, 70.0, now)
    diary_with_triptan(ehr, run_id, patient, now - timedelta(hours=3))
    orders = offered_and_created(app, cds_client, ehr, patient, "dihydroergotamine", "dhe-repeat", 70.0)
    cards = signed(app, cds_client, ehr, patient, orders)
    [spacing] = [c for c in cards if "sumatriptan" in c["summary"].lower()]
    assert spacing["indicator"] == "critical"


def test_order_sign_without_the_triptan_in_the_diary_raises_no_spacing_card(service, ehr: FhirClient, run_id) -> None:
    app, cds_client = service
    now = datetime.now(UTC).replace(microsecond=0)
    patient = a_patient(ehr, run_id, 70.0, now)
    order = {**selected(patient, "dihydroergotamine"), "authoredOn": now.isoformat()}
    assert not [c for c in signed(app, cds_client, ehr, patient, [order]) if "triptan" in c["summary"].lower()]


def test_dhe_signed_three_hours_after_a_triptan_in_the_diary_is_critical(service, ehr: FhirClient, run_id) -> None:
    app, cds_client = service
    now = datetime.now(UTC).replace(microsecond=0)
    patient = a_patient(ehr, run_id, 70.0, now)
    diary_with_triptan(ehr, run_id, patient, now - timedelta(hours=3))
    order = {**selected(patient, "dihydroergotamine"), "authoredOn": now.isoformat()}
    [spacing] = [c for c in signed(app, cds_client, ehr, patient, [order]) if "sumatriptan" in c["summary"].lower()]
    assert spacing["indicator"] == "critical"
