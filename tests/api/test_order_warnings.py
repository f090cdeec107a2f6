"""POST /orders: the warnings of an order (a delivery beyond a labelled rate) in the answer's body."""

from __future__ import annotations

import json
from typing import Any

from tests.api.test_imports import client_of, with_ehr
from tests.conftest import EXAMPLES


def _order(name: str) -> Any:
    return json.loads((EXAMPLES / "orders" / f"{name}.json").read_text())


def _detected_issues(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]


def test_the_service_answers_the_bundle_with_its_warnings(client) -> None:
    order = _order("valproate-weight-based")
    answer = client.post("/orders", json=order)
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["bundle"]["resourceType"] == "Bundle"
    assert _detected_issues(body["bundle"])[0]["detail"] == body["warnings"]["issue"][0]["diagnostics"]


def test_the_service_answers_a_bare_bundle_without_warnings(client) -> None:
    order = _order("ed-migraine-rescue")
    answer = client.post("/orders", json=order)
    assert (answer.status_code, answer.mimetype) == (201, "application/fhir+json")
    assert answer.get_json()["resourceType"] == "Bundle"


def test_with_an_ehr_the_queued_answer_carries_the_warnings(settings) -> None:
    client = client_of(with_ehr(settings))
    warned = client.post("/orders", json=_order("valproate-weight-based"))
    assert warned.status_code == 202
    assert "62 mg/min" in warned.get_json()["warnings"]["issue"][0]["diagnostics"]
    quiet = client.post("/orders", json=_order("ed-migraine-rescue"))
    assert quiet.status_code == 202
    assert "warnings" not in quiet.get_json()
