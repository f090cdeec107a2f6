"""POST /orders: the warnings of an order (a delivery beyond a labelled rate) in the answer's body."""

from __future__ import annotations

import json
from typing import Any

from tests.api.test_imports import client_of, with_ehr
from tests.cases import ORDER, PROTOCOL
from tests.conftest import EXAMPLES, PROTOCOLS_TOKEN


def _order(name: str) -> Any:
    return json.loads((EXAMPLES / "orders" / f"{name}.json").read_text())


def _detected_issues(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]


def test_without_an_ehr_the_bundle_holds_the_warnings_as_detected_issues(client, author) -> None:
    assert author.put(f"/protocols/{PROTOCOL['id']}", json=PROTOCOL).status_code == 201
    answer = client.post("/orders", json=ORDER)  # valproate 900 mg over 15 min
    assert (answer.status_code, answer.mimetype) == (201, "application/fhir+json")
    bundle = answer.get_json()
    [issue] = _detected_issues(bundle)
    assert "60 mg/min" in issue["detail"] and "20 mg/min" in issue["detail"]


def test_the_service_answers_a_bare_bundle_without_warnings(client) -> None:
    order = _order("ed-migraine-rescue")
    answer = client.post("/orders", json=order)
    assert (answer.status_code, answer.mimetype) == (201, "application/fhir+json")
    assert answer.get_json()["resourceType"] == "Bundle"


def test_with_an_ehr_the_queued_answer_carries_the_warnings(settings) -> None:
    client = client_of(with_ehr(settings))
    author = {"Authorization": f"Bearer {PROTOCOLS_TOKEN}"}
    assert client.put(f"/protocols/{PROTOCOL['id']}", json=PROTOCOL, headers=author).status_code == 201
    warned = client.post("/orders", json=ORDER)
    assert warned.status_code == 202
    assert "60 mg/min" in warned.get_json()["warnings"]["issue"][0]["diagnostics"]
    quiet = client.post("/orders", json=_order("ed-migraine-rescue"))
    assert quiet.status_code == 202
    assert "warnings" not in quiet.get_json()
