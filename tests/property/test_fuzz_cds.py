"""Any body sent to a CDS service, however broken, is answered with cards (200) or a 4xx problem
naming JSON paths: never a 500, whatever part of a realistic request is replaced or removed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given

from fhir_migraine.api import create_app
from tests.cdshooks import Ehr, bundle, rsa_key, sign_request, trusting
from tests.property.test_fuzz_inputs import FUZZ, JSON, mutated

UCUM = "http://unitsofmeasure.org"
PATIENT = {"resourceType": "Patient", "id": "p-1", "gender": "female", "birthDate": "1950-01-01"}
WEIGHT = {"resourceType": "Observation", "id": "w", "status": "final",
          "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
          "effectiveDateTime": "2026-11-30T10:00:00Z", "valueQuantity": {"value": 48, "unit": "kg", "system": UCUM, "code": "kg"}}
KETOROLAC = {"resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order",
             "subject": {"reference": "Patient/p-1"}, "medicationCodeableConcept": {"text": "ketorolac"},
             "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 30, "unit": "mg", "system": UCUM, "code": "mg"}}]}]}
SIGN = {**sign_request("p-1"), "prefetch": {"patient": PATIENT, "observations": bundle(WEIGHT), "conditions": bundle()}}
SIGN["context"]["draftOrders"]["entry"] = [{"resource": KETOROLAC}]
SELECT = {"hook": "order-select", "hookInstance": "h-1",
          "context": {"userId": "Practitioner/dr-1", "patientId": "p-1", "selections": ["MedicationRequest/d1"],
                      "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": KETOROLAC}]}},
          "prefetch": {"patient": PATIENT, "observations": bundle(WEIGHT)}}
VIEW = {"hook": "patient-view", "hookInstance": "h-2", "context": {"userId": "Practitioner/dr-1", "patientId": "p-1"},
        "prefetch": {"patient": PATIENT, "diary": bundle(), "statements": bundle()}}


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> tuple[Any, Ehr]:
    from fhir_migraine.config import ApiAuthSettings, Settings

    folder = tmp_path_factory.mktemp("cds-fuzz")
    ehr = Ehr(rsa_key())
    app = create_app(trusting(Settings(database=str(folder / "s.sqlite3"), api=ApiAuthSettings(token="t")), folder, ehr))
    return app, ehr


def answered_or_located(service: tuple[Any, Ehr], service_id: str, body: Any) -> None:
    app, ehr = service
    answer = app.test_client().post(f"/cds-services/{service_id}", data=json.dumps(body),
                                    content_type="application/json", headers=ehr.headers(service_id))
    assert answer.status_code in (200, 400, 422), answer.get_data(as_text=True)
    if answer.status_code == 200:
        assert isinstance(answer.get_json()["cards"], list)
    else:
        assert answer.mimetype == "application/problem+json"
        assert all(e["path"].startswith("$") for e in answer.get_json()["errors"])


@FUZZ
@given(JSON | mutated(SIGN))
def test_any_order_sign_body_is_answered_or_refused_with_a_path(service, body: Any) -> None:
    answered_or_located(service, "migraine-order-sign", body)


@FUZZ
@given(JSON | mutated(SELECT))
def test_any_order_select_body_is_answered_or_refused_with_a_path(service, body: Any) -> None:
    answered_or_located(service, "migraine-order-select", body)


@FUZZ
@given(JSON | mutated(VIEW))
def test_any_patient_view_body_is_answered_or_refused_with_a_path(service, body: Any) -> None:
    answered_or_located(service, "migraine-patient-view", body)


def test_the_unmutated_requests_are_answered_with_cards(service) -> None:
    for service_id, body in (("migraine-order-sign", SIGN), ("migraine-order-select", SELECT), ("migraine-patient-view", VIEW)):
        app, ehr = service
        answer = app.test_client().post(f"/cds-services/{service_id}", json=body, headers=ehr.headers(service_id))
        assert answer.status_code == 200, (service_id, answer.get_json())
    signed = app.test_client().post("/cds-services/migraine-order-sign", json=SIGN, headers=ehr.headers("migraine-order-sign"))
    assert any("ketorolac" in c["summary"].lower() for c in signed.get_json()["cards"])
