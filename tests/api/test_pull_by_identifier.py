"""GET /patients/identifier=SYSTEM|VALUE/diary (and /orders): the patient is found in the EHR by its
identifier and pulled by the literal reference; none found is a 404, several a 409, both naming it."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from fhir_migraine.config import Settings
from tests.api.test_pull_endpoints import client_with
from tests.fakehttp import MONTH, PATIENT, FakeEhrSession

SYSTEM, VALUE = "http://hospital.example/mrn", "MRN42"
PATH = quote(f"identifier={SYSTEM}|{VALUE}", safe="=")


def patient(pid: str) -> dict[str, object]:
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": SYSTEM, "value": VALUE}]}


def test_a_diary_is_pulled_by_the_patients_identifier(settings: Settings) -> None:
    session = FakeEhrSession([*MONTH, patient(PATIENT.removeprefix("Patient/"))])
    answer = client_with(settings, session).get(f"/patients/{PATH}/diary")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["resources"] == len(MONTH)
    assert "/Patient?identifier=" in session.sent[0].url
    assert session.sent[1].url.endswith("/metadata")
    assert len(session.sent) > 2 and all(f"subject={quote(PATIENT, safe='')}" in s.url for s in session.sent[2:])


@pytest.mark.parametrize(("patients", "status", "said"), [(0, 404, "no Patient in the EHR has"),
                                                         (2, 409, "2 Patients in the EHR have")])
def test_no_single_patient_with_the_identifier_is_a_clear_error(settings: Settings, patients: int, status: int,
                                                                 said: str) -> None:
    session = FakeEhrSession([*MONTH, *(patient(f"p{n}") for n in range(patients))])
    answer = client_with(settings, session).get(f"/patients/{PATH}/orders")
    assert answer.status_code == status
    assert said in answer.get_json()["detail"] and f"{SYSTEM}|{VALUE}" in answer.get_json()["detail"]
    assert len(session.sent) == 1, "nothing is pulled for no patient or an unknown one"


def test_an_incomplete_identifier_is_a_422_naming_the_patient(settings: Settings) -> None:
    answer = client_with(settings, FakeEhrSession(MONTH)).get("/patients/identifier=urn:x/diary")
    assert answer.status_code == 422
    assert "$.patient" in str(answer.get_json())
