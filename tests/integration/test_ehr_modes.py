"""The local test EHR's modes (tests/ehr/README.md, "Modes"), checked with plain HTTP requests:
what each mode does, what the CapabilityStatement then says, and that switching back restores
HAPI's own behaviour, all on one running server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from tests.ehr_modes import BYPASS, admin_url, current_modes, modes, register_patient, set_modes

pytestmark = pytest.mark.ehr

FHIR_JSON = {"Content-Type": "application/fhir+json"}
SYSTEM = "urn:fhir-migraine:test:modes"
Switch = Callable[..., dict[str, Any]]


def fhir(method: str, url: str, body: Any = None, **headers: str) -> requests.Response:
    return requests.request(method, url, json=body, headers={**FHIR_JSON, **headers}, timeout=60)


def statement(base: str, **headers: str) -> dict[str, Any]:
    answer = fhir("GET", f"{base}/metadata", **headers)
    assert answer.status_code == 200
    found: dict[str, Any] = answer.json()
    return found


def rest_type(found: dict[str, Any], resource_type: str) -> dict[str, Any]:
    rest = next(r for r in found["rest"] if r["mode"] == "server")
    item: dict[str, Any] = next(r for r in rest["resource"] if r["type"] == resource_type)
    return item


def interactions(found: dict[str, Any], resource_type: str) -> set[str]:
    return {i["code"] for i in rest_type(found, resource_type).get("interaction", [])}


def system_interactions(found: dict[str, Any]) -> set[str]:
    rest = next(r for r in found["rest"] if r["mode"] == "server")
    return {i["code"] for i in rest.get("interaction", [])}


def search_params(found: dict[str, Any], resource_type: str) -> set[str]:
    return {p["name"] for p in rest_type(found, resource_type).get("searchParam", [])}


def outcome_text(answer: requests.Response) -> str:
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome", body
    return " ".join(i.get("diagnostics", "") for i in body["issue"])


def observation(subject: dict[str, Any] | None, value: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"system": SYSTEM, "value": value}],
        "code": {"text": "headache severity"},
        "valueInteger": 3,
    }
    if subject is not None:
        resource["subject"] = subject
    return resource


def count(base: str, query: str) -> int:
    answer = fhir("GET", f"{base}/{query}&_summary=count", **BYPASS)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:10]


# --- switching -------------------------------------------------------------------------------


def test_admin_endpoint_reads_sets_and_names_an_unknown_mode(ehr_url: str, ehr_modes: Switch) -> None:
    assert admin_url(ehr_url).endswith("/admin/modes")
    assert ehr_modes("strict", "throttle", throttle_every=7) == {"modes": ["strict", "throttle"], "throttle_every": 7}
    assert current_modes(ehr_url) == {"modes": ["strict", "throttle"], "throttle_every": 7}

    bad = requests.put(admin_url(ehr_url), json={"modes": ["strict", "no-such-mode"]}, timeout=30)
    assert bad.status_code == 400
    assert "no-such-mode" in bad.json()["error"]
    bad = requests.put(admin_url(ehr_url), json={"modes": [], "throttle_every": 0}, timeout=30)
    assert bad.status_code == 400
    assert "throttle_every" in bad.json()["error"]
    assert current_modes(ehr_url)["modes"] == ["strict", "throttle"], "a refused PUT changes nothing"

    with modes(ehr_url, "no-transaction"):
        assert current_modes(ehr_url)["modes"] == ["no-transaction"]
    assert current_modes(ehr_url) == {"modes": ["strict", "throttle"], "throttle_every": 7}


def test_the_statement_follows_a_switch_at_once_and_comes_back(ehr_url: str, ehr_modes: Switch) -> None:
    plain = statement(ehr_url)
    assert "transaction" in system_interactions(plain)
    assert "create" in interactions(plain, "Patient")
    assert "referencePolicy" not in rest_type(plain, "Observation")

    ehr_modes("strict", "no-transaction", "no-conditional", "restricted-create", "limited-search")
    strict = statement(ehr_url)
    assert "transaction" not in system_interactions(strict)
    assert "batch" not in system_interactions(strict)
    assert "create" not in interactions(strict, "Patient")
    assert rest_type(strict, "Observation")["referencePolicy"] == ["literal", "resolves", "enforced", "local"]
    assert rest_type(strict, "Observation")["conditionalCreate"] is False
    assert "modes: strict" in strict["implementation"]["description"]
    assert statement(ehr_url, **BYPASS)["rest"] == plain["rest"], "X-Test-Admin sees no mode"

    ehr_modes()
    assert statement(ehr_url)["rest"] == plain["rest"]


# --- strict ----------------------------------------------------------------------------------


def test_strict_refuses_a_reference_to_a_missing_patient_and_creates_no_placeholder(
        ehr_url: str, ehr_modes: Switch, uid: str) -> None:
    ehr_modes("strict")
    missing = f"missing-{uid}"
    answer = fhir("POST", f"{ehr_url}/Observation", observation({"reference": f"Patient/{missing}"}, uid))
    assert answer.status_code == 400
    assert f"Patient/{missing}" in outcome_text(answer)
    assert count(ehr_url, f"Patient?_id={missing}") == 0
    assert count(ehr_url, f"Observation?identifier={SYSTEM}|{uid}") == 0

    updated = fhir("PUT", f"{ehr_url}/Observation/strict-{uid}",
                   {**observation({"reference": f"Patient/{missing}"}, uid), "id": f"strict-{uid}"})
    assert updated.status_code == 400

    in_transaction = fhir("POST", ehr_url, {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": observation({"reference": f"Patient/{missing}"}, uid),
        "request": {"method": "POST", "url": "Observation"}}]})
    assert in_transaction.status_code == 400
    assert count(ehr_url, f"Patient?_id={missing}") == 0


@pytest.mark.parametrize("subject, words", [
    pytest.param({"identifier": {"system": SYSTEM, "value": "p-1"}}, "identifier only", id="identifier-only"),
    pytest.param({"reference": "http://other.example.org/fhir/Patient/1"}, "external reference", id="external"),
])
def test_strict_refuses_logical_and_external_references(
        ehr_url: str, ehr_modes: Switch, uid: str, subject: dict[str, Any], words: str) -> None:
    ehr_modes("strict")
    answer = fhir("POST", f"{ehr_url}/Observation", observation(subject, uid))
    assert answer.status_code == 400
    assert words in outcome_text(answer)


def test_strict_accepts_existing_targets_and_references_inside_a_transaction(
        ehr_url: str, ehr_modes: Switch, uid: str) -> None:
    patient = register_patient(ehr_url, SYSTEM, uid)
    ehr_modes("strict")
    assert fhir("POST", f"{ehr_url}/Observation", observation({"reference": patient}, f"{uid}-a")).status_code == 201
    absolute = f"{ehr_url}/{patient}"
    assert fhir("POST", f"{ehr_url}/Observation", observation({"reference": absolute}, f"{uid}-b")).status_code == 201

    new_patient = f"urn:uuid:{uuid.uuid4()}"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": new_patient, "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": observation({"reference": new_patient}, f"{uid}-c"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Patient", "id": f"put-{uid}"}, "request": {"method": "PUT", "url": f"Patient/put-{uid}"}},
        {"resource": observation({"reference": f"Patient/put-{uid}"}, f"{uid}-d"),
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    answer = fhir("POST", ehr_url, bundle)
    assert answer.status_code == 200, answer.text
    assert [e["response"]["status"][:3] for e in answer.json()["entry"]] == ["201", "201", "201", "201"]


def test_x_test_admin_bypasses_strict(ehr_url: str, ehr_modes: Switch, uid: str) -> None:
    ehr_modes("strict")
    answer = fhir("POST", f"{ehr_url}/Observation", observation({"reference": f"Patient/bypass-{uid}"}, uid), **BYPASS)
    assert answer.status_code == 201
    assert count(ehr_url, f"Patient?_id=bypass-{uid}") == 1, "HAPI's placeholder, as without modes"


# --- no-transaction --------------------------------------------------------------------------


@pytest.mark.parametrize("bundle_type", ["transaction", "batch"])
def test_no_transaction_refuses_bundles_with_405(ehr_url: str, ehr_modes: Switch, uid: str, bundle_type: str) -> None:
    bundle = {"resourceType": "Bundle", "type": bundle_type, "entry": [
        {"resource": observation(None, uid), "request": {"method": "POST", "url": "Observation"}}]}
    ehr_modes("no-transaction")
    answer = fhir("POST", ehr_url, bundle)
    assert answer.status_code == 405
    assert "no-transaction" in outcome_text(answer)
    assert count(ehr_url, f"Observation?identifier={SYSTEM}|{uid}") == 0
    assert not {"transaction", "batch"} & system_interactions(statement(ehr_url))

    ehr_modes()
    assert fhir("POST", ehr_url, bundle).status_code == 200


# --- no-conditional --------------------------------------------------------------------------


def test_no_conditional_ignores_if_none_exist_and_refuses_conditional_update(
        ehr_url: str, ehr_modes: Switch, uid: str) -> None:
    ehr_modes("no-conditional")
    condition = f"identifier={SYSTEM}|{uid}"
    for _ in range(2):
        answer = fhir("POST", f"{ehr_url}/Observation", observation(None, uid), **{"If-None-Exist": condition})
        assert answer.status_code == 201
    assert count(ehr_url, f"Observation?{condition}") == 2, "a real duplicate, as an EHR without conditional create makes"

    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation(None, uid), "request": {"method": "POST", "url": "Observation", "ifNoneExist": condition}}]}
    assert fhir("POST", ehr_url, bundle).status_code == 200
    assert count(ehr_url, f"Observation?{condition}") == 3

    conditional_put = fhir("PUT", f"{ehr_url}/Observation?identifier={SYSTEM}|other-{uid}", observation(None, f"other-{uid}"))
    assert conditional_put.status_code == 405
    assert "conditional" in outcome_text(conditional_put)

    found = statement(ehr_url)
    assert rest_type(found, "Observation")["conditionalCreate"] is False
    assert rest_type(found, "Observation")["conditionalUpdate"] is False
    assert rest_type(found, "Observation")["conditionalDelete"] == "not-supported"

    ehr_modes()
    again = fhir("POST", f"{ehr_url}/Observation", observation(None, f"once-{uid}"),
                 **{"If-None-Exist": f"identifier={SYSTEM}|once-{uid}"})
    assert again.status_code == 201
    matched = fhir("POST", f"{ehr_url}/Observation", observation(None, f"once-{uid}"),
                   **{"If-None-Exist": f"identifier={SYSTEM}|once-{uid}"})
    assert matched.status_code == 200, "HAPI's conditional create is back"


# --- restricted-create -----------------------------------------------------------------------


def test_restricted_create_writes_only_patient_reported_types(ehr_url: str, ehr_modes: Switch, uid: str) -> None:
    patient = register_patient(ehr_url, SYSTEM, uid)
    ehr_modes("restricted-create")
    refused = fhir("POST", f"{ehr_url}/Patient", {"resourceType": "Patient"})
    assert refused.status_code == 405
    assert "create of Patient" in outcome_text(refused)
    request = {"resourceType": "MedicationRequest", "id": f"mr-{uid}", "status": "draft", "intent": "order",
               "medicationCodeableConcept": {"text": "magnesium"}, "subject": {"reference": patient}}
    assert fhir("PUT", f"{ehr_url}/MedicationRequest/mr-{uid}", request).status_code == 405

    created = fhir("POST", f"{ehr_url}/Observation", observation({"reference": patient}, uid))
    assert created.status_code == 201
    obs_id = created.headers["Location"].split("/Observation/")[1].split("/")[0]
    updated = fhir("PUT", f"{ehr_url}/Observation/{obs_id}", {**observation({"reference": patient}, uid), "id": obs_id})
    assert updated.status_code == 200, "an allowed type can be updated"

    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": observation({"reference": patient}, f"{uid}-b"), "request": {"method": "POST", "url": "Observation"}}]}
    answer = fhir("POST", ehr_url, batch)
    assert answer.status_code == 200
    assert [e["response"]["status"][:3] for e in answer.json()["entry"]] == ["405", "201"]
    transaction = {**batch, "type": "transaction"}
    assert fhir("POST", ehr_url, transaction).status_code == 405

    found = statement(ehr_url)
    for writable in ("Observation", "QuestionnaireResponse", "DocumentReference", "MedicationStatement"):
        assert {"create", "update"} <= interactions(found, writable)
    for other in ("Patient", "MedicationRequest", "RequestGroup"):
        assert not {"create", "update", "patch"} & interactions(found, other)
        assert {"read", "search-type"} <= interactions(found, other)

    assert register_patient(ehr_url, SYSTEM, f"{uid}-admin").startswith("Patient/"), "X-Test-Admin still creates"


# --- minimal-response ------------------------------------------------------------------------


def test_minimal_response_answers_creates_and_updates_with_headers_only(
        ehr_url: str, ehr_modes: Switch, uid: str) -> None:
    ehr_modes("minimal-response")
    created = fhir("POST", f"{ehr_url}/Observation", observation(None, uid), Prefer="return=representation")
    assert created.status_code == 201
    assert created.content == b""
    location = created.headers["Location"]
    assert location.startswith(f"{ehr_url}/Observation/") and location.endswith("/_history/1")
    assert created.headers["ETag"] == 'W/"1"'

    obs_id = location.split("/Observation/")[1].split("/")[0]
    changed = {**observation(None, uid), "id": obs_id, "valueInteger": 4}  # HAPI keeps the version of a no-op update
    updated = fhir("PUT", f"{ehr_url}/Observation/{obs_id}", changed, Prefer="return=OperationOutcome")
    assert updated.status_code == 200
    assert updated.content == b""
    assert updated.headers["Location"] == f"{ehr_url}/Observation/{obs_id}/_history/2"
    assert updated.headers["ETag"] == 'W/"2"'
    assert "minimal-response" in statement(ehr_url)["implementation"]["description"]

    ehr_modes()
    plain = fhir("POST", f"{ehr_url}/Observation", observation(None, f"{uid}-plain"))
    assert plain.json()["resourceType"] == "Observation"


# --- relative-links --------------------------------------------------------------------------


def test_relative_links_resolve_against_the_base(ehr_url: str, ehr_modes: Switch, uid: str) -> None:
    own_system = f"{SYSTEM}:{uid}"
    for n in range(3):
        resource = {**observation(None, str(n)), "identifier": [{"system": own_system, "value": str(n)}]}
        assert fhir("POST", f"{ehr_url}/Observation", resource, **BYPASS).status_code == 201
    ehr_modes("relative-links")
    query = f"Observation?identifier={own_system}|&_count=2"
    first = fhir("GET", f"{ehr_url}/{query}").json()
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert links["self"].startswith("Observation?")
    assert links["next"].startswith("?_getpages=")
    assert not any("://" in url for url in links.values())

    second = fhir("GET", urljoin(f"{ehr_url}/", links["next"])).json()
    assert second["resourceType"] == "Bundle"
    assert len(first["entry"]) + len(second["entry"]) == 3
    assert all("://" not in link["url"] for link in second["link"])

    ehr_modes()
    plain = fhir("GET", f"{ehr_url}/{query}").json()
    assert all(link["url"].startswith(ehr_url) for link in plain["link"])


# --- throttle --------------------------------------------------------------------------------


def test_throttle_refuses_every_nth_request_doing_nothing(ehr_url: str, ehr_modes: Switch, uid: str) -> None:
    ehr_modes("throttle", throttle_every=3)
    assert fhir("GET", f"{ehr_url}/Patient?_count=1").status_code == 200
    assert fhir("GET", f"{ehr_url}/metadata").status_code == 200, "not counted"
    assert fhir("GET", f"{ehr_url}/Patient?_count=1", **BYPASS).status_code == 200, "not counted"
    assert fhir("GET", f"{ehr_url}/Patient?_count=1").status_code == 200
    refused = fhir("POST", f"{ehr_url}/Observation", observation(None, uid))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert "throttle" in outcome_text(refused)
    assert count(ehr_url, f"Observation?identifier={SYSTEM}|{uid}") == 0, "the refused create did nothing"
    assert fhir("POST", f"{ehr_url}/Observation", observation(None, uid)).status_code == 201
    assert "every 3th request answers 429" in statement(ehr_url)["implementation"]["description"]


# --- limited-search --------------------------------------------------------------------------


@pytest.mark.parametrize("resource_type", ["Observation", "MedicationRequest", "RequestGroup"])
@pytest.mark.parametrize("param", ["identifier", "subject", "subject:Patient", "subject.identifier"])
def test_limited_search_refuses_identifier_and_subject(
        ehr_url: str, ehr_modes: Switch, resource_type: str, param: str) -> None:
    ehr_modes("limited-search")
    answer = fhir("GET", f"{ehr_url}/{resource_type}?{param}=x")
    assert answer.status_code == 400
    assert f"'{param}'" in outcome_text(answer)
    assert fhir("GET", f"{ehr_url}/{resource_type}?patient=Patient/x").status_code == 200


def test_limited_search_statement_and_count_cap(ehr_url: str, ehr_modes: Switch, uid: str) -> None:
    patient = register_patient(ehr_url, SYSTEM, uid)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation({"reference": patient}, f"{uid}-{n}"), "request": {"method": "POST", "url": "Observation"}}
        for n in range(205)]}
    assert fhir("POST", ehr_url, bundle, **BYPASS).status_code == 200
    ehr_modes("limited-search")
    page = fhir("GET", f"{ehr_url}/Observation?patient={patient}&_count=500").json()
    assert len(page["entry"]) == 200
    next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")
    assert parse_qs(urlsplit(next_url).query)["_count"] == ["200"]

    found = statement(ehr_url)
    for resource_type in ("Observation", "MedicationRequest", "RequestGroup"):
        params = search_params(found, resource_type)
        assert "patient" in params
        assert not {"identifier", "subject"} & params
    assert {"identifier"} <= search_params(found, "Patient")

    ehr_modes()
    assert fhir("GET", f"{ehr_url}/Observation?subject={patient}&_count=500").json()["total"] == 205


def test_every_mode_at_once_still_lets_set_up_through(ehr_url: str, ehr_modes: Switch, uid: str) -> None:
    ehr_modes("strict", "no-transaction", "no-conditional", "restricted-create", "minimal-response",
              "relative-links", "throttle", "limited-search", throttle_every=1000)
    patient = register_patient(ehr_url, SYSTEM, uid)
    created = fhir("POST", f"{ehr_url}/Observation", observation({"reference": patient}, uid))
    assert created.status_code == 201
    assert created.content == b""


def test_set_modes_raises_on_an_unknown_mode(ehr_url: str, ehr_modes: Switch) -> None:
    with pytest.raises(requests.HTTPError):
        set_modes(ehr_url, ["strict", "bogus"])
    assert current_modes(ehr_url)["modes"] == []
