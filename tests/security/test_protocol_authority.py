"""Only protocol authors change protocols; a version never changes under the orders that name it;
every change is recorded with who made it."""

from __future__ import annotations

import copy
import json
import logging

from tests.cases import PROTOCOL
from tests.conftest import EXAMPLES

KETOROLAC = "ed-migraine-rescue"


def _ketorolac_order() -> dict:
    order = json.loads((EXAMPLES / "orders" / "ed-migraine-rescue.json").read_text())
    order["overrides"] = {"nsaid": {"dose": "2000 mg"}}
    return order


def _raised_ceiling(document: dict) -> dict:
    raised = copy.deepcopy(document)
    for step in raised["steps"]:
        if step.get("drug") == "ketorolac":
            step["max_dose"] = "3000 mg"
    return raised


def test_a_write_token_cannot_change_a_protocol(client) -> None:
    stored = client.get(f"/protocols/{KETOROLAC}").get_json()
    answer = client.put(f"/protocols/{KETOROLAC}", json=_raised_ceiling(stored))
    assert answer.status_code == 403
    assert answer.mimetype == "application/problem+json"
    assert "migraine:protocols" in answer.get_json()["detail"]
    assert client.get(f"/protocols/{KETOROLAC}").get_json() == stored
    assert client.post("/orders", json=_ketorolac_order()).status_code == 422


def test_the_ceiling_cannot_be_raised_under_the_same_version_even_by_an_author(client, author) -> None:
    stored = client.get(f"/protocols/{KETOROLAC}").get_json()
    answer = author.put(f"/protocols/{KETOROLAC}", json=_raised_ceiling(stored))
    assert answer.status_code == 409
    assert answer.get_json()["errors"][0]["path"] == "$.version"
    assert client.get(f"/protocols/{KETOROLAC}").get_json() == stored
    assert client.post("/orders", json=_ketorolac_order()).status_code == 422


def test_a_new_version_is_stored_recorded_and_the_old_one_stays_readable(client, author) -> None:
    stored = client.get(f"/protocols/{KETOROLAC}").get_json()
    changed = dict(_raised_ceiling(stored), version="9.0")
    assert author.put(f"/protocols/{KETOROLAC}", json=changed).status_code == 200
    assert client.get(f"/protocols/{KETOROLAC}").get_json()["version"] == "9.0"
    assert client.get(f"/protocols/{KETOROLAC}", query_string={"version": stored["version"]}).get_json() == stored
    changes = client.get(f"/protocols/{KETOROLAC}/history").get_json()["changes"]
    assert [c["version"] for c in changes] == [stored["version"], "9.0"]
    assert [c["subject"] for c in changes] == ["seed", "static-protocols-token"]
    assert changes[1]["previous_hash"] == changes[0]["content_hash"] != changes[1]["content_hash"]
    assert all(c["content_hash"].startswith("sha256:") for c in changes)


def test_the_same_content_again_changes_nothing(client, author) -> None:
    assert author.put("/protocols/test-rescue", json=PROTOCOL).status_code == 201
    assert author.put("/protocols/test-rescue", json=copy.deepcopy(PROTOCOL)).status_code == 200
    assert len(client.get("/protocols/test-rescue/history").get_json()["changes"]) == 1


def test_a_version_once_used_cannot_come_back_with_other_content(client, author) -> None:
    assert author.put("/protocols/test-rescue", json=PROTOCOL).status_code == 201
    assert author.put("/protocols/test-rescue", json=dict(PROTOCOL, version="2.0")).status_code == 200
    other = dict(PROTOCOL, title="Something else")
    assert author.put("/protocols/test-rescue", json=other).status_code == 409
    assert author.put("/protocols/test-rescue", json=PROTOCOL).status_code == 200  # the same content as 1.0 is fine


def test_history_of_an_unknown_protocol_is_a_404(client) -> None:
    assert client.get("/protocols/no-such/history").status_code == 404
    assert client.get(f"/protocols/{KETOROLAC}", query_string={"version": "0.0"}).status_code == 404


def test_a_change_is_logged_without_the_document(author, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="fhir_migraine"):
        assert author.put("/protocols/test-rescue", json=PROTOCOL).status_code == 201
    record = next(r for r in caplog.records if r.getMessage() == "protocol changed")
    assert (record.protocol_id, record.version, record.previous_hash) == ("test-rescue", PROTOCOL["version"], None)
    assert record.content_hash.startswith("sha256:")
