"""DELETE /orders/{order_id} and DELETE /diary/{entry_id}: queued (202, the outbox item to follow),
the patient taken from the outbox or the query, clear 4xx answers otherwise."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_migraine.api import create_app, services_of
from fhir_migraine.config import EhrSettings, Settings, WorkerSettings
from tests.conftest import API_TOKEN, EXAMPLES
from tests.fakehttp import BASE
from tests.memoryehr import MemoryEhr

ORDER = json.loads((EXAMPLES / "orders" / "ed-migraine-rescue.json").read_text(encoding="utf-8"))


@pytest.fixture
def api(settings: Settings) -> Any:
    app = create_app(replace(settings, ehr=EhrSettings(url=BASE), worker=WorkerSettings(enabled=False)))
    app.config["TESTING"] = True
    gateway = services_of(app).gateway
    assert gateway is not None
    gateway.ehr = MemoryEhr(identifier_search=True)  # type: ignore[assignment]
    gateway.capabilities.fetch = gateway.ehr.metadata
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    return client


def test_an_order_posted_here_is_cancelled_through_the_outbox(api: Any) -> None:
    posted = api.post("/orders", json=ORDER)
    assert posted.status_code == 202
    answer = api.delete(f"/orders/{ORDER['order_id']}?reason=duplicate%20order")
    assert answer.status_code == 202 and answer.headers["Location"] == f"/outbox/{answer.get_json()['outbox_id']}"
    shown = api.get(answer.headers["Location"]).get_json()
    assert (shown["kind"], shown["state"]) == ("withdrawal", "pending")


@pytest.mark.parametrize(("path", "status", "field"), [
    ("/orders/ed-2099-0001", 404, None),
    ("/orders/not%20an%20id?patient=Patient/1", 422, "$.order_id"),
    ("/orders/ed-2099-0001?patient=identifier=urn:mrn", 422, "$.patient"),
    ("/diary/p1-2026-10-01?patient=Patient/has%20space", 422, "$.patient"),
])
def test_a_withdrawal_that_cannot_be_queued_is_a_clear_4xx(api: Any, path: str, status: int, field: str | None) -> None:
    answer = api.delete(path)
    assert answer.status_code == status
    body = answer.get_json()
    if field is None:
        assert "name its patient" in body["detail"]
    else:
        assert [e["path"] for e in body["errors"]] == [field]


def test_a_diary_entry_with_its_patient_named_is_queued_for_retraction(api: Any) -> None:
    answer = api.delete("/diary/p123-2026-10-18?patient=Patient/123")
    assert answer.status_code == 202
    assert api.get(f"/outbox/{answer.get_json()['outbox_id']}").get_json()["kind"] == "withdrawal"


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(what=st.sampled_from(["orders", "diary"]), target=TEXT, patient=st.none() | TEXT, reason=st.none() | TEXT)
def test_any_withdrawal_request_is_queued_or_a_clear_4xx_naming_the_field(
        api: Any, what: str, target: str, patient: str | None, reason: str | None) -> None:
    query = {k: v for k, v in (("patient", patient), ("reason", reason)) if v is not None}
    answer = api.delete(f"/{what}/{quote(target, safe='')}", query_string=query)
    if answer.status_code == 308:
        # A "/" in the id (decoded from %2F): the path is redirected to its normal form (no empty or
        # trailing segment), as every route's is.
        assert "/" in target and "//" not in answer.headers["Location"].split("://", 1)[1]
        return
    assert answer.status_code in (202, 404, 405, 422), (answer.status_code, answer.get_data(as_text=True)[:300])
    body = answer.get_json()
    if answer.status_code == 422:
        assert {e["path"] for e in body["errors"]} <= {"$.order_id", "$.entry_id", "$.patient"}
    elif answer.status_code == 404:
        assert body["detail"]
