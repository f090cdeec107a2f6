"""The CDS Hooks HTTP edge: discovery, the checks of a call's body, prefetch completion from the
EHR's fhirServer, feedback, CORS and logs. The rules' ``answer`` is replaced by a recorder here
(the cards themselves are tested with the rules and in tests/integration/test_cds_loop.py)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from fhir_migraine.api import create_app
from fhir_migraine.cds import services as cds
from fhir_migraine.logs import JsonFormatter
from tests.cdshooks import Ehr, FakeServer, bundle, rsa_key, sign_request, trusting

SIGN = "migraine-order-sign"
PATIENT = "p-4711"
ACCESS_TOKEN = "ehr-access-token-for-this-call"


@pytest.fixture(scope="module")
def ehr_key() -> Any:
    return rsa_key()


@pytest.fixture
def ehr(ehr_key) -> Ehr:
    return Ehr(ehr_key)


class Recorder:
    """Stands in for ``cds.services.answer``: keeps what it was given, answers one card."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, service_id: str, request: dict[str, Any], prefetch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        self.calls.append({"service": service_id, "request": request, "prefetch": prefetch, **kwargs})
        return {"cards": [{"uuid": "card-1", "summary": "checked", "indicator": "info", "source": {"label": "test"}}]}


@pytest.fixture
def answered(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(cds, "answer", recorder)
    return recorder


@pytest.fixture
def cds_app(settings, tmp_path, ehr, answered):
    app = create_app(trusting(settings, tmp_path, ehr, allow_http=True))
    app.config["TESTING"] = True
    return app


def post(app, ehr: Ehr, body: Any, service: str = SIGN, **kwargs: Any):
    return app.test_client().post(f"/cds-services/{service}", json=body, headers=ehr.headers(service), **kwargs)


def test_discovery_lists_the_three_services_without_any_token(app) -> None:
    answer = app.test_client().get("/cds-services")
    assert answer.status_code == 200
    services = answer.get_json()["services"]
    assert {(s["id"], s["hook"]) for s in services} == {
        ("migraine-order-select", "order-select"), ("migraine-order-sign", "order-sign"),
        ("migraine-patient-view", "patient-view")}
    assert all(isinstance(s["prefetch"], dict) and s["title"] and s["description"] for s in services)


def test_an_unknown_service_is_a_404(cds_app, ehr) -> None:
    answer = post(cds_app, ehr, sign_request(), service="no-such-service")
    assert answer.status_code == 404
    assert answer.mimetype == "application/problem+json"


def test_a_call_passes_the_checked_body_the_prefetch_and_the_protocol_library(cds_app, ehr, answered) -> None:
    patient = {"resourceType": "Patient", "id": PATIENT}
    prefetch = {key: bundle() for key in cds.service(SIGN)["prefetch"]} | {"patient": patient}
    answer = post(cds_app, ehr, sign_request(PATIENT, prefetch=prefetch))
    assert answer.status_code == 200
    assert answer.get_json()["cards"][0]["uuid"] == "card-1"
    [seen] = answered.calls
    assert seen["service"] == SIGN and seen["prefetch"] == prefetch
    assert seen["protocols"]("dhe-repeat", None).id == "dhe-repeat"
    assert "dhe-repeat" in seen["protocol_ids"]
    assert seen["app_url"] is None  # no SMART app configured
    assert seen["now"].tzinfo is not None


def problems(answer) -> dict[str, str]:
    assert answer.status_code == 400, answer.get_json()
    assert answer.mimetype == "application/problem+json"
    return {e["path"]: e["message"] for e in answer.get_json()["errors"]}


@pytest.mark.parametrize(("body", "path"), [
    pytest.param([], "$", id="not-an-object"),
    pytest.param({**sign_request(), "hook": "patient-view"}, "$.hook", id="another-hook"),
    pytest.param({**sign_request(), "hook": None}, "$.hook", id="no-hook"),
    pytest.param({**sign_request(), "hookInstance": ""}, "$.hookInstance", id="empty-hook-instance"),
    pytest.param({**sign_request(), "hookInstance": 7}, "$.hookInstance", id="hook-instance-not-text"),
    pytest.param({**sign_request(), "context": "p-4711"}, "$.context", id="context-not-object"),
    pytest.param({**sign_request(), "prefetch": []}, "$.prefetch", id="prefetch-not-object"),
    pytest.param({**sign_request(), "prefetch": {"patient": "Patient/p-4711"}}, "$.prefetch.patient", id="prefetch-text"),
    pytest.param({**sign_request(), "prefetch": {"conditions": {"entry": []}}}, "$.prefetch.conditions",
                 id="prefetch-without-resource-type"),
    pytest.param({**sign_request(), "fhirAuthorization": {"access_token": "t"}}, "$.fhirAuthorization",
                 id="authorization-without-server"),
    pytest.param({**sign_request(), "fhirServer": "https://ehr.example/fhir", "fhirAuthorization": {"token_type": "Bearer"}},
                 "$.fhirAuthorization.access_token", id="authorization-without-token"),
    pytest.param({**sign_request(), "fhirServer": "ftp://ehr.example/fhir"}, "$.fhirServer", id="server-not-http"),
    pytest.param({**sign_request(), "fhirServer": 42}, "$.fhirServer", id="server-not-text"),
])
def test_a_body_that_breaks_the_hooks_contract_is_a_400_naming_the_path(cds_app, ehr, answered, body, path) -> None:
    assert path in problems(post(cds_app, ehr, body))
    assert answered.calls == []


def test_plain_http_to_a_remote_fhir_server_is_refused(settings, tmp_path, ehr, answered) -> None:
    app = create_app(trusting(settings, tmp_path, ehr))
    found = problems(post(app, ehr, {**sign_request(), "fhirServer": "http://ehr.example/fhir"}))
    assert "https" in found["$.fhirServer"]


@pytest.mark.parametrize("data", [b"", b"{not json", b"\xff\xfe"], ids=["empty", "broken", "not-utf8"])
def test_a_body_that_is_not_json_is_a_400(cds_app, ehr, answered, data: bytes) -> None:
    answer = cds_app.test_client().post(f"/cds-services/{SIGN}", data=data, content_type="application/json",
                                        headers=ehr.headers(SIGN))
    assert answer.status_code == 400
    assert answer.get_json()["errors"][0]["path"] == "$"


def test_missing_prefetch_is_fetched_from_the_fhir_server_with_the_given_token(cds_app, ehr, answered) -> None:
    patient = {"resourceType": "Patient", "id": PATIENT}
    conditions = bundle({"resourceType": "Condition", "id": "c1"})
    templates = cds.service(SIGN)["prefetch"]
    routes = {f"/fhir/{templates['conditions'].replace('{{context.patientId}}', PATIENT)}": conditions}
    with FakeServer(routes).running() as ehr_server:
        body = sign_request(PATIENT, fhirServer=f"{ehr_server.url}/fhir",
                            fhirAuthorization={"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
                                               "scope": "patient/*.read", "subject": "cds-service"},
                            prefetch={"patient": patient})
        assert post(cds_app, ehr, body).status_code == 200
    [seen] = answered.calls
    assert seen["prefetch"]["patient"] == patient  # sent: not fetched again
    assert seen["prefetch"]["conditions"] == conditions
    # What the server does not have is None (the rules then say they could not check).
    assert all(seen["prefetch"][k] is None for k in templates if k not in ("patient", "conditions"))
    assert sorted(s.path.split("?")[0] for s in ehr_server.seen) == sorted(
        f"/fhir/{templates[k].split('?')[0]}" for k in templates if k != "patient")
    assert {s.headers["Authorization"] for s in ehr_server.seen} == {f"Bearer {ACCESS_TOKEN}"}


def test_a_fhir_server_that_does_not_answer_leaves_every_key_none(cds_app, ehr, answered) -> None:
    body = sign_request(PATIENT, fhirServer="http://127.0.0.1:9/fhir", fhirAuthorization={"access_token": ACCESS_TOKEN})
    answer = post(cds_app, ehr, body)
    assert answer.status_code == 200
    [seen] = answered.calls
    assert set(seen["prefetch"]) == set(cds.service(SIGN)["prefetch"])
    assert all(value is None for value in seen["prefetch"].values())


def test_without_fhir_server_and_prefetch_every_key_is_none(cds_app, ehr, answered) -> None:
    assert post(cds_app, ehr, sign_request()).status_code == 200
    assert all(value is None for value in answered.calls[0]["prefetch"].values())


def test_an_input_error_of_the_rules_is_a_4xx_naming_the_path(cds_app, ehr, monkeypatch) -> None:
    from fhir_migraine.errors import InputError, Problem

    def refuse(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise InputError.of([Problem("$.context.draftOrders", "must be a Bundle")], "CDS Hooks request")

    monkeypatch.setattr(cds, "answer", refuse)
    answer = post(cds_app, ehr, sign_request())
    assert answer.status_code == 422
    assert answer.get_json()["errors"][0]["path"] == "$.context.draftOrders"


def test_a_preflight_is_answered_with_cors_headers_and_no_token(cds_app) -> None:
    answer = cds_app.test_client().options(f"/cds-services/{SIGN}", headers={
        "Origin": "https://ehr-web.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")} >= {
        "authorization", "content-type"}
    assert "Access-Control-Allow-Credentials" not in answer.headers


def test_answers_and_refusals_carry_the_allowed_origin(cds_app, ehr) -> None:
    origin = {"Origin": "https://ehr-web.example"}
    ok = cds_app.test_client().post(f"/cds-services/{SIGN}", json=sign_request(), headers={**ehr.headers(SIGN), **origin})
    refused = cds_app.test_client().post(f"/cds-services/{SIGN}", json=sign_request(), headers=origin)
    discovery = cds_app.test_client().get("/cds-services", headers=origin)
    assert [a.status_code for a in (ok, refused, discovery)] == [200, 401, 200]
    assert all(a.headers["Access-Control-Allow-Origin"] == "*" for a in (ok, refused, discovery))


def test_a_configured_origin_list_is_echoed_and_others_get_no_cors(settings, tmp_path, ehr, answered) -> None:
    app = create_app(trusting(settings, tmp_path, ehr, allowed_origins=("https://ehr-web.example",)))
    known = app.test_client().get("/cds-services", headers={"Origin": "https://ehr-web.example"})
    other = app.test_client().get("/cds-services", headers={"Origin": "https://evil.example"})
    assert known.headers["Access-Control-Allow-Origin"] == "https://ehr-web.example"
    assert "Origin" in known.headers["Vary"]
    assert "Access-Control-Allow-Origin" not in other.headers


def test_feedback_is_recorded_without_the_clinicians_comment(cds_app, ehr) -> None:
    body = {"feedback": [
        {"card": "card-1", "outcome": "accepted", "acceptedSuggestions": [{"id": "s-1"}],
         "outcomeTimestamp": "2026-12-01T10:00:00Z"},
        {"card": "card-2", "outcome": "overridden", "outcomeTimestamp": "2026-12-01T10:01:00Z",
         "overrideReason": {"reason": {"system": "http://example.org/reasons", "code": "benefit-outweighs-risk"},
                            "userComment": "Jane Doe tolerated it last week"}}]}
    answer = cds_app.test_client().post(f"/cds-services/{SIGN}/feedback", json=body, headers=ehr.headers(SIGN))
    assert answer.status_code == 200
    assert answer.get_json() == {"recorded": 2}
    store = cds_app.extensions["fhir_migraine"].cds_feedback
    [accepted] = store.of_card("card-1")
    [overridden] = store.of_card("card-2")
    assert (accepted.outcome, accepted.accepted_suggestions) == ("accepted", ("s-1",))
    assert overridden.override_reason == "http://example.org/reasons|benefit-outweighs-risk"
    with open(cds_app.extensions["fhir_migraine"].settings.database, "rb") as db:
        assert b"Jane Doe" not in db.read()


@pytest.mark.parametrize(("body", "path"), [
    pytest.param({}, "$.feedback", id="no-feedback"),
    pytest.param({"feedback": []}, "$.feedback", id="empty"),
    pytest.param({"feedback": ["card-1"]}, "$.feedback[0]", id="item-not-object"),
    pytest.param({"feedback": [{"card": "c", "outcome": "ignored", "outcomeTimestamp": "t"}]}, "$.feedback[0].outcome",
                 id="unknown-outcome"),
    pytest.param({"feedback": [{"outcome": "accepted", "outcomeTimestamp": "t"}]}, "$.feedback[0].card", id="no-card"),
    pytest.param({"feedback": [{"card": "c", "outcome": "accepted"}]}, "$.feedback[0].outcomeTimestamp", id="no-time"),
    pytest.param({"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "t", "acceptedSuggestions": [{}]}]},
                 "$.feedback[0].acceptedSuggestions[0].id", id="suggestion-without-id"),
    pytest.param({"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "t", "overrideReason": {}}]},
                 "$.feedback[0].overrideReason.reason", id="reason-without-coding"),
])
def test_bad_feedback_is_a_400_naming_the_path(cds_app, ehr, body, path) -> None:
    answer = cds_app.test_client().post(f"/cds-services/{SIGN}/feedback", json=body, headers=ehr.headers(SIGN))
    assert path in problems(answer)


def test_feedback_without_a_jwt_is_a_401(cds_app) -> None:
    answer = cds_app.test_client().post(f"/cds-services/{SIGN}/feedback", json={"feedback": []})
    assert answer.status_code == 401


def test_the_logs_of_calls_name_no_patient_and_no_token(cds_app, ehr) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("fhir_migraine")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        token = ehr.token(SIGN)
        headers = {"Authorization": f"Bearer {token}"}
        body = sign_request(PATIENT, fhirServer="http://127.0.0.1:9/fhir", fhirAuthorization={"access_token": ACCESS_TOKEN})
        client = cds_app.test_client()
        assert client.post(f"/cds-services/{SIGN}", json=body, headers=headers).status_code == 200
        assert client.post(f"/cds-services/{SIGN}", json=body, headers=headers).status_code == 401  # replayed
        assert client.post(f"/cds-services/{SIGN}", json={**body, "hook": "x"}, headers=ehr.headers(SIGN)).status_code == 400
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert {"cds call", "cds jwt refused", "prefetch not fetched"} <= {line["msg"] for line in lines}
    for secret in (PATIENT, ACCESS_TOKEN, token, body["hookInstance"], "dr-1"):
        assert secret not in text


def test_exactly_the_cds_routes_are_exempt_from_the_services_token(app) -> None:
    from fhir_migraine.api import security

    cds_rules = {rule.endpoint for rule in app.url_map.iter_rules() if rule.rule.startswith("/cds-services")}
    assert cds_rules == security.CDS_ENDPOINTS == {"cds.discovery", "cds.call", "cds.feedback"}


def test_a_cds_jwt_opens_no_other_endpoint(cds_app, ehr) -> None:
    for method, path in (("get", "/protocols"), ("post", "/orders"), ("get", "/openapi.json")):
        answer = getattr(cds_app.test_client(), method)(path, headers=ehr.headers(SIGN))
        assert answer.status_code == 401, path


def dhe_sign_request(**extra: Any) -> dict[str, Any]:
    body = sign_request(PATIENT, **extra)
    body["context"]["draftOrders"]["entry"] = [{"resource": {
        "resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"}, "medicationCodeableConcept": {"text": "dihydroergotamine"}}}]
    return body


def test_a_fhir_server_that_does_not_answer_gives_cards_saying_the_checks_did_not_run(settings, tmp_path, ehr) -> None:
    app = create_app(trusting(settings, tmp_path, ehr, allow_http=True))
    body = dhe_sign_request(fhirServer="http://127.0.0.1:9/fhir", fhirAuthorization={"access_token": ACCESS_TOKEN})
    answer = post(app, ehr, body)
    assert answer.status_code == 200
    not_run = [c for c in answer.get_json()["cards"] if c["summary"].startswith("Check not run")]
    assert not_run and all(c["indicator"] == "warning" for c in not_run)
    assert any("triptan-ergot-24h" in c["summary"] for c in not_run)


def test_the_same_call_with_the_prefetch_sent_runs_every_check(settings, tmp_path, ehr) -> None:
    app = create_app(trusting(settings, tmp_path, ehr))
    prefetch = {key: bundle() for key in cds.service(SIGN)["prefetch"]}
    prefetch["patient"] = {"resourceType": "Patient", "id": PATIENT, "gender": "male", "birthDate": "1970-01-01"}
    answer = post(app, ehr, dhe_sign_request(prefetch=prefetch))
    assert answer.status_code == 200
    assert not [c for c in answer.get_json()["cards"] if c["summary"].startswith("Check not run")]


def test_draft_orders_that_are_not_a_bundle_are_refused_by_the_rules_with_the_path(settings, tmp_path, ehr) -> None:
    app = create_app(trusting(settings, tmp_path, ehr))
    body = sign_request(PATIENT)
    body["context"]["draftOrders"] = [{"resourceType": "MedicationRequest"}]
    answer = post(app, ehr, body)
    assert answer.status_code == 422
    assert answer.get_json()["errors"][0]["path"] == "$.context.draftOrders"


def test_the_smart_apps_launch_url_is_passed_when_the_app_is_configured(settings, tmp_path, ehr, answered) -> None:
    from dataclasses import replace

    from fhir_migraine.config import SmartSettings

    trusted = trusting(settings, tmp_path, ehr)
    smart = SmartSettings(client_id="app", issuers=("https://ehr.example.org/fhir",), public_url="https://migraine.example.org")
    app = create_app(replace(trusted, smart=smart))
    body = {"hook": "patient-view", "hookInstance": "h-1", "context": {"userId": "Practitioner/dr-1", "patientId": PATIENT}}
    assert post(app, ehr, body, service="migraine-patient-view").status_code == 200
    assert answered.calls[0]["app_url"] == "https://migraine.example.org/smart/launch"
