"""FHIR endpoints: CapabilityStatement, StructureDefinitions and $validate; POST /validate."""

from __future__ import annotations

import copy
import json

import pytest

from tests.conftest import ROOT

ATTACK = json.loads((ROOT / "profiles" / "examples" / "Observation-diary-attack-example.json").read_text())
PROFILE = "https://fhir-migraine.org/fhir/StructureDefinition/diary-attack"


def _broken() -> dict:
    attack = copy.deepcopy(ATTACK)
    attack["component"][0]["valueInteger"] = 11
    return attack


def test_metadata_lists_every_profile_and_needs_no_token(app) -> None:
    answer = app.test_client().get("/fhir/metadata")
    assert answer.status_code == 200
    assert answer.mimetype == "application/fhir+json"
    statement = answer.get_json()
    assert statement["fhirVersion"] == "4.0.1"
    profiles = {p for r in statement["rest"][0]["resource"] for p in r.get("supportedProfile", [])}
    assert PROFILE in profiles
    definitions = [json.loads(p.read_text()) for p in (ROOT / "profiles").glob("StructureDefinition-*.json")]
    assert len(profiles) == len([d for d in definitions if d["type"] != "Extension"])  # the extensions are not listed


def test_structure_definitions_are_served(client) -> None:
    answer = client.get("/fhir/StructureDefinition/diary-attack")
    assert answer.status_code == 200
    assert answer.get_json()["url"] == PROFILE
    missing = client.get("/fhir/StructureDefinition/nope")
    assert missing.status_code == 404
    assert missing.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("url", ["/fhir/$validate", "/fhir/Observation/$validate", "/validate"])
def test_validate_answers_an_outcome_for_valid_and_invalid_resources(client, url: str) -> None:
    good = client.post(url, json=ATTACK)
    assert good.status_code == 200
    assert [i["severity"] for i in good.get_json()["issue"]] == ["information"]
    bad = client.post(url, json=_broken()).get_json()
    assert bad["issue"][0]["severity"] == "error"
    assert bad["issue"][0]["expression"] == ["Observation.component[0]"]


def test_validate_takes_parameters_with_resource_and_profile(client) -> None:
    attack = _broken()
    attack.pop("meta")
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": attack},
                                                                {"name": "profile", "valueUri": PROFILE}]}
    outcome = client.post("/fhir/Observation/$validate", json=parameters).get_json()
    assert "mig-att-2" in outcome["issue"][0]["diagnostics"]
    plain = client.post("/fhir/Observation/$validate", json=attack).get_json()
    assert plain["issue"][0]["severity"] == "information", "without the profile only the base spec applies"
    by_query = client.post(f"/fhir/Observation/$validate?profile={PROFILE}", json=attack).get_json()
    assert by_query["issue"][0]["severity"] == "error"


@pytest.mark.parametrize(
    ("url", "body", "status"),
    [
        ("/fhir/Patient/$validate", ATTACK, 422),
        ("/fhir/$validate", {"resourceType": "Parameters", "parameter": []}, 422),
        ("/fhir/$validate?profile=https://example.org/nope", ATTACK, 422),
        ("/fhir/$validate", "not json", 400),
    ],
    ids=["wrong-type", "parameters-without-resource", "unknown-profile", "not-json"],
)
def test_bad_validate_requests_are_4xx_operation_outcomes(client, url: str, body, status: int) -> None:
    data = body if isinstance(body, str) else json.dumps(body)
    answer = client.post(url, data=data, content_type="application/fhir+json")
    assert answer.status_code == status
    assert answer.get_json()["resourceType"] == "OperationOutcome"


def test_validate_needs_only_the_read_scope_and_a_token(app) -> None:
    assert app.test_client().post("/fhir/$validate", json=ATTACK).status_code == 401
