"""GET /patients/{ref}/orders and /diary through Flask's test client, the EHR a fake HTTP layer: a
step that cannot be read back is reported in a 200, an EHR that asks for a longer wait than a
pull may spend is a 503 passing its Retry-After on, and the types an EHR's CapabilityStatement
offers no search of by patient are left out with a warning naming them."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

from fhir_migraine.api import create_app, services_of
from fhir_migraine.config import EhrSettings, Settings, WorkerSettings
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.mapping.fhir import identifiers
from tests.conftest import API_TOKEN
from tests.fakehttp import BASE, MONTH, PATIENT, RESCUE, VALPROATE, FakeEhrSession, Fault

DATA = Path(__file__).parent.parent / "data"


def client_with(settings: Settings, session: FakeEhrSession):
    app = create_app(replace(settings, ehr=EhrSettings(url=BASE), worker=WorkerSettings(enabled=False)))
    app.config["TESTING"] = True
    gateway = services_of(app).gateway
    assert gateway is not None
    gateway.ehr = FhirClient(BASE, session=session)
    gateway.capabilities.fetch = gateway.ehr.metadata  # the statement is read from the fake as well
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    return client


def test_an_order_step_that_cannot_be_read_is_reported_and_the_other_orders_come_back(settings: Settings) -> None:
    broken = copy.deepcopy(RESCUE)
    del broken[0]["groupIdentifier"], broken[0]["meta"]
    answer = client_with(settings, FakeEhrSession(MONTH + broken + VALPROATE)).get(f"/patients/{PATIENT}/orders")
    assert answer.status_code == 200
    found = answer.get_json()
    assert [o["order_id"] for o in found["orders"]] == [identifiers(VALPROATE[0])[0]["value"].split("/")[0]]
    assert [i["order_id"] for i in found["incomplete"]] == [identifiers(RESCUE[0])[0]["value"].split("/")[0]]
    assert "groupIdentifier" in found["incomplete"][0]["problem"]


def test_a_wait_longer_than_a_pull_may_spend_is_a_503_with_the_ehrs_retry_after(settings: Settings) -> None:
    session = FakeEhrSession(MONTH, faults={2: Fault(429, {"Retry-After": "600"})})  # the first search, after /metadata
    answer = client_with(settings, session).get(f"/patients/{PATIENT}/diary")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "600"
    assert "FHIR_MIGRAINE_PULL_MAX_WAIT" in answer.get_json()["detail"]
    assert [s.url.split("?")[0] for s in session.sent] == [f"{BASE}/metadata", f"{BASE}/MedicationRequest"]


def test_an_ehr_whose_statement_offers_no_search_of_a_type_by_patient_answers_the_rest_with_a_warning(
        settings: Settings) -> None:
    statement = json.loads((DATA / "capabilities" / "oracle-like.json").read_text(encoding="utf-8"))  # no RequestGroup
    session = FakeEhrSession(MONTH, statement=statement)
    answer = client_with(settings, session).get(f"/patients/{PATIENT}/diary")
    assert answer.status_code == 200
    found = answer.get_json()
    assert len(found["diary"]) > 0 and found["invalid"] == []
    assert len(found["warnings"]) == 1 and "RequestGroup by patient or subject" in found["warnings"][0]
    assert f"{BASE}/RequestGroup" not in [s.url.split("?")[0] for s in session.sent]


def test_the_summary_of_the_pulled_diary_has_the_figures_of_the_diary_itself(settings: Settings) -> None:
    client = client_with(settings, FakeEhrSession(MONTH))
    answer = client.get(f"/patients/{PATIENT}/summary?month=2026-10")
    assert answer.status_code == 200, answer.get_json()
    found = answer.get_json()
    assert (found["from"], found["to"], found["headache_days"], found["migraine_days"]) == ("2026-10-01", "2026-10-31", 4, 4)
    assert found["left_out"] == {"invalid": [], "incomplete": []}
    bad = client.get(f"/patients/{PATIENT}/summary?month=2026-10&from=2026-10-01")
    assert bad.status_code == 422 and [e["path"] for e in bad.get_json()["errors"]] == ["$.month"]
    no_such_month = client.get(f"/patients/{PATIENT}/summary?month=2026-13")
    assert no_such_month.status_code == 422 and [e["path"] for e in no_such_month.get_json()["errors"]] == ["$.month"]
    assert "is not a month" in no_such_month.get_json()["errors"][0]["message"]
    assert client_with(settings, FakeEhrSession([])).get(f"/patients/{PATIENT}/summary").status_code == 404
