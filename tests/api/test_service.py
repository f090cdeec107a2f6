"""The HTTP service through Flask's test client."""

from __future__ import annotations

import json
import re

import pytest
from jsonschema import Draft202012Validator

from fhir_migraine.mapping.fhir import identifiers
from tests.cases import PROTOCOL
from tests.conftest import EXAMPLES, PROTOCOLS


def test_health_answers_ok(client) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ok"}


def test_the_library_is_seeded_with_the_example_protocols(client) -> None:
    listed = client.get("/protocols").get_json()["protocols"]
    assert sorted(p["id"] for p in listed) == sorted(p.stem for p in PROTOCOLS.glob("*.yaml"))
    assert {"id", "version", "title", "intent", "status"} == set(listed[0])


def test_get_protocol_returns_its_document(client) -> None:
    answer = client.get("/protocols/dhe-repeat")
    assert answer.status_code == 200
    assert answer.get_json()["schedule"] == {"kind": "repeat", "every": 8, "unit": "h", "count": 9}


def test_unknown_protocol_is_a_404_problem(client) -> None:
    answer = client.get("/protocols/no-such")
    assert answer.status_code == 404
    assert answer.mimetype == "application/problem+json"
    assert "no-such" in answer.get_json()["detail"]


def test_put_creates_then_replaces_a_protocol(client, author) -> None:
    assert author.put("/protocols/test-rescue", json=PROTOCOL).status_code == 201
    changed = dict(PROTOCOL, version="1.1")
    assert author.put("/protocols/test-rescue", json=changed).status_code == 200
    assert client.get("/protocols/test-rescue").get_json()["version"] == "1.1"


def test_put_accepts_yaml(author) -> None:
    text = (PROTOCOLS / "dhe-repeat.yaml").read_text().replace("id: dhe-repeat", "id: dhe-copy")
    answer = author.put("/protocols/dhe-copy", data=text, content_type="application/yaml")
    assert answer.status_code == 201, answer.get_json()


def test_put_refuses_an_id_that_differs_from_the_url(author) -> None:
    answer = author.put("/protocols/other-id", json=PROTOCOL)
    assert answer.status_code == 422
    assert answer.get_json()["errors"][0]["path"] == "$.id"


def test_the_library_survives_a_restart(settings) -> None:
    from fhir_migraine.api import create_app

    auth = {"Authorization": f"Bearer {settings.api.token}"}
    author = {"Authorization": f"Bearer {settings.api.protocols_token}"}
    assert create_app(settings).test_client().put("/protocols/test-rescue", json=PROTOCOL, headers=author).status_code == 201
    again = create_app(settings).test_client()
    assert again.get("/protocols/test-rescue", headers=auth).status_code == 200


@pytest.mark.parametrize("name", ["ed-migraine-rescue", "valproate-weight-based"])
def test_post_order_answers_201_with_the_golden_bundle(client, name: str) -> None:
    order = json.loads((EXAMPLES / "orders" / f"{name}.json").read_text())
    answer = client.post("/orders", json=order)
    assert answer.status_code == 201
    assert answer.mimetype == "application/fhir+json"
    assert answer.get_json() == json.loads((EXAMPLES / "bundles" / f"{name}.bundle.json").read_text())


def test_an_empty_body_is_a_400_problem(client) -> None:
    answer = client.post("/orders", data=b"")
    assert answer.status_code == 400
    assert answer.get_json()["errors"] == [{"path": "$", "message": "the request body is empty"}]


def test_wrong_method_is_a_405_problem(client) -> None:
    answer = client.delete("/orders")
    assert answer.status_code == 405
    assert answer.mimetype == "application/problem+json"


def test_openapi_describes_every_endpoint(app, client) -> None:
    document = client.get("/openapi.json").get_json()
    described = {(re.sub(r"\{\w+\}", "{}", path), method) for path, item in document["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(\w+:)?\w+>", "{}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in described, (path, method)


def test_openapi_schemas_are_valid_json_schema_and_accept_the_examples(client) -> None:
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    for name in ("Protocol", "Order", "Problem"):
        Draft202012Validator.check_schema(schemas[name])
    order_schema = {"$ref": "#/components/schemas/Order", **document}
    validator = Draft202012Validator(order_schema)
    for order in (EXAMPLES / "orders").glob("*.json"):
        assert list(validator.iter_errors(json.loads(order.read_text()))) == []


def test_post_diary_accepts_one_entry_or_a_list(client) -> None:
    month = json.loads((EXAMPLES / "diary" / "month.json").read_text())
    golden = json.loads((EXAMPLES / "diary" / "month.bundle.json").read_text())
    answer = client.post("/diary", json=month)
    assert answer.status_code == 201
    assert answer.mimetype == "application/fhir+json"
    assert answer.get_json() == golden
    one = client.post("/diary", json=month[0])
    assert one.status_code == 201
    first_day = month[0]["entry_id"]
    assert one.get_json()["entry"] == [e for e in golden["entry"] if identifiers(e["resource"])[0]["value"].startswith(first_day)]


def test_openapi_diary_schema_accepts_the_example_month(client) -> None:
    document = client.get("/openapi.json").get_json()
    validator = Draft202012Validator({"$ref": "#/components/schemas/DiaryEntry", **document})
    for entry in json.loads((EXAMPLES / "diary" / "month.json").read_text()):
        assert list(validator.iter_errors(entry)) == []


@pytest.mark.parametrize(("change", "path", "said"), [
    ({"pain_2h": "agony"}, "$[2].medications[0].pain_2h", "is not one of"),
    ({"rescue": "yes"}, "$[2].medications[0].rescue", "is not of type 'boolean'"),
    ({"pain_2h": "moderate", "pain_free_2h": True}, "$[2].medications[0].pain_free_2h", "pain freedom is pain 'none'"),
], ids=["pain-off-the-scale", "rescue-as-text", "pain-free-with-moderate-pain"])
def test_post_diary_refuses_a_bad_outcome_naming_its_path(client, change, path, said) -> None:
    month = json.loads((EXAMPLES / "diary" / "month.json").read_text())
    month[2]["medications"][0] |= change
    answer = client.post("/diary", json=month)
    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    errors = answer.get_json()["errors"]
    assert [e["path"] for e in errors] == [path]
    assert said in errors[0]["message"]
