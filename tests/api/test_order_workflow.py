"""Orders that fit the EHR's workflow (draft by default, the site's status and intent, encounter,
priority, category, the weight carried with the order) and protocol governance in the service
(immutable versions, orders and unmap following the version they name, only active protocols
ordered)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest

from fhir_migraine import operations
from fhir_migraine.api import create_app
from fhir_migraine.api.services import services_of
from fhir_migraine.mapping.fhir import identifiers
from fhir_migraine.mapping.order_settings import OrderSettings
from tests.cases import ORDER, PROTOCOL
from tests.conftest import API_TOKEN, EXAMPLES


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _order(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(ORDER), **changes}


def test_orders_are_drafts_of_intent_order_by_default(client, author) -> None:
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=PROTOCOL).status_code == 201
    bundle = client.post("/orders", json=ORDER).get_json()
    requests = _resources(bundle, "MedicationRequest")
    (group,) = _resources(bundle, "RequestGroup")
    assert {(r["status"], r["intent"]) for r in [*requests, group]} == {("draft", "order")}


def test_a_site_sends_its_orders_active_with_its_intent(settings) -> None:
    site = replace(settings, orders=OrderSettings(status="active", intent="original-order"))
    app = create_app(site)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    order = json.loads((EXAMPLES / "orders" / "ed-migraine-rescue.json").read_text())
    bundle = client.post("/orders", json=order).get_json()
    statuses = {(r["status"], r["intent"]) for r in bundle["entry"] for r in [r["resource"]]}
    assert statuses == {("active", "original-order")}


def test_encounter_priority_and_category_reach_every_request(client, author) -> None:
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=PROTOCOL).status_code == 201
    order = _order(encounter={"reference": "Encounter/e-1"}, priority="stat", category="inpatient")
    bundle = client.post("/orders", json=order).get_json()
    for request in _resources(bundle, "MedicationRequest"):
        assert request["encounter"] == {"reference": "Encounter/e-1"}
        assert request["priority"] == "stat"
        assert request["category"][0]["coding"][0]["code"] == "inpatient"
    (group,) = _resources(bundle, "RequestGroup")
    assert (group["encounter"], group["priority"]) == ({"reference": "Encounter/e-1"}, "stat")


def test_an_order_without_a_priority_takes_the_protocols(client, author) -> None:
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=dict(PROTOCOL, priority="urgent")).status_code == 201
    bundle = client.post("/orders", json=ORDER).get_json()
    assert {r["priority"] for r in _resources(bundle, "MedicationRequest")} == {"urgent"}
    own = client.post("/orders", json=_order(priority="routine")).get_json()
    assert {r["priority"] for r in _resources(own, "MedicationRequest")} == {"routine"}


def test_the_weight_travels_with_each_request_and_is_not_charted(client, author) -> None:
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=PROTOCOL).status_code == 201
    weight = {"quantity": "60 kg", "measured_at": "2026-12-01T08:30:00Z", "source": "stated"}
    bundle = client.post("/orders", json=_order(weight=weight)).get_json()
    assert _resources(bundle, "Observation") == []
    for request in _resources(bundle, "MedicationRequest"):
        assert {"reference": "#weight"} in request["supportingInformation"]
        (contained,) = [c for c in request["contained"] if c.get("id") == "weight"]
        assert contained["effectiveDateTime"] == "2026-12-01T08:30:00Z"
        assert [c["code"] for c in contained["code"]["coding"]] == ["29463-7", "3142-7"]
        assert "category" not in contained


def test_a_site_may_also_chart_the_weight_as_a_vital_sign(settings) -> None:
    app = create_app(replace(settings, orders=OrderSettings(weight_observation=True)))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    order = json.loads((EXAMPLES / "orders" / "dhe-repeat.json").read_text())
    (charted,) = _resources(client.post("/orders", json=order).get_json(), "Observation")
    assert charted["category"][0]["coding"][0]["code"] == "vital-signs"
    assert charted["effectiveDateTime"] == order["weight"]["measured_at"]
    assert charted["valueQuantity"]["value"] == 81.5


def test_a_version_keeps_its_content_and_a_new_one_is_kept_beside_it(client, author) -> None:
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=PROTOCOL).status_code == 201
    changed = copy.deepcopy(PROTOCOL)
    changed["steps"][1]["dose"] = "5 mg"
    conflict = author.put(f"/protocols/{PROTOCOL['id']}", json=changed)
    assert conflict.status_code == 409
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=dict(changed, version="2.0")).status_code == 200
    assert client.get(f"/protocols/{PROTOCOL['id']}?version=1.0").get_json()["steps"][1]["dose"] == "10 mg"
    assert client.get(f"/protocols/{PROTOCOL['id']}").get_json()["version"] == "2.0"


def _two_versions(author) -> None:
    """Version 1.0 (metoclopramide 10 mg) and the current 2.0 (5 mg)."""
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=PROTOCOL).status_code == 201
    newer = copy.deepcopy(PROTOCOL)
    newer["version"] = "2.0"
    newer["steps"][1]["dose"] = "5 mg"
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=newer).status_code == 200


def _antiemetic(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in _resources(bundle, "MedicationRequest") if identifiers(r)[0]["value"].endswith("/antiemetic"))


def test_an_order_follows_the_version_it_names(client, author) -> None:
    _two_versions(author)
    current = client.post("/orders", json=ORDER).get_json()
    named = client.post("/orders", json=_order(protocol_version="1.0")).get_json()
    assert _antiemetic(current)["instantiatesCanonical"][0].endswith("|2.0")
    assert _antiemetic(current)["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 5
    assert _antiemetic(named)["instantiatesCanonical"][0].endswith("|1.0")
    assert _antiemetic(named)["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 10


def test_unmap_reads_an_order_back_against_the_version_it_names(app, client, author) -> None:
    _two_versions(author)
    named = _order(protocol_version="1.0")
    bundle = client.post("/orders", json=named).get_json()
    found = operations.unmap(bundle, services_of(app).protocols.get)["orders"]
    # Against 1.0 the 10 mg is the protocol's own dose, so no override comes back.
    assert found == [named]


def test_an_unknown_version_is_refused_with_its_path(client, author) -> None:
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=PROTOCOL).status_code == 201
    answer = client.post("/orders", json=_order(protocol_version="3.0"))
    assert answer.status_code == 422
    assert [e["path"] for e in answer.get_json()["errors"]] == ["$.protocol_version"]


@pytest.mark.parametrize("status", ["draft", "retired"])
def test_only_an_active_version_can_be_ordered(client, author, status: str) -> None:
    _two_versions(author)
    retired = dict(copy.deepcopy(PROTOCOL), version="3.0", status=status)
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=retired).status_code == 200
    answer = client.post("/orders", json=ORDER)  # the current version is now 3.0
    assert answer.status_code == 422
    errors = answer.get_json()["errors"]
    assert [e["path"] for e in errors] == ["$.protocol"] and status in errors[0]["message"]
    assert client.post("/orders", json=_order(protocol_version="2.0")).status_code == 201
    listed = {p["id"]: p for p in client.get("/protocols").get_json()["protocols"]}
    assert listed[PROTOCOL["id"]]["status"] == status


def test_a_stored_version_may_be_retired_without_a_new_version(client, author) -> None:
    _two_versions(author)
    retired = dict(copy.deepcopy(PROTOCOL), status="retired")
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=retired).status_code == 200
    answer = client.post("/orders", json=_order(protocol_version="1.0"))
    assert answer.status_code == 422
    assert [e["path"] for e in answer.get_json()["errors"]] == ["$.protocol"]
    # The current version stays 2.0, and active: orders that name no version still go through.
    assert client.get(f"/protocols/{PROTOCOL['id']}").get_json()["version"] == "2.0"
    assert client.post("/orders", json=ORDER).status_code == 201
    assert client.get(f"/protocols/{PROTOCOL['id']}?version=1.0").get_json()["status"] == "retired"
    changes = client.get(f"/protocols/{PROTOCOL['id']}/history").get_json()["changes"]
    assert [c["version"] for c in changes] == ["1.0", "2.0", "1.0"]


def test_a_status_never_goes_back_and_a_dose_never_changes_under_one_version(author) -> None:
    retired = dict(copy.deepcopy(PROTOCOL), status="retired")
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=retired).status_code == 201
    back = author.put(f"/protocols/{PROTOCOL['id']}", json=dict(retired, status="active"))
    assert back.status_code == 409
    assert [e["path"] for e in back.get_json()["errors"]] == ["$.status"]
    changed = copy.deepcopy(retired)
    changed["steps"][1]["dose"] = "5 mg"
    assert [e["path"] for e in author.put(f"/protocols/{PROTOCOL['id']}", json=changed).get_json()["errors"]] == ["$.version"]


def test_a_draft_version_is_ordered_once_it_is_made_active(client, author) -> None:
    draft = dict(copy.deepcopy(PROTOCOL), status="draft")
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=draft).status_code == 201
    assert client.post("/orders", json=ORDER).status_code == 422
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=dict(draft, status="active")).status_code == 200
    bundle = client.post("/orders", json=ORDER).get_json()
    assert _antiemetic(bundle)["instantiatesCanonical"][0].endswith("|1.0")
