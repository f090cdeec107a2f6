"""The SMART app's client side: the EHR's endpoints read from its SMART configuration (and what
makes one unusable), and the authorization URL Authlib builds (PKCE S256, aud, launch)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from fhir_migraine.ehr import smart
from fhir_migraine.errors import EhrError, EhrRejected, EhrUnavailable
from fhir_migraine.identifiers import DIARY_SYSTEM
from tests.fakehttp import BASE, MONTH, RESCUE, FakeEhrSession, Fault, response

ISS = "https://ehr.example.org/fhir"
GOOD = {"authorization_endpoint": "https://ehr.example.org/oauth/authorize", "token_endpoint": "https://ehr.example.org/oauth/token",
        "code_challenge_methods_supported": ["S256"]}


def answering(monkeypatch: pytest.MonkeyPatch, answer: Any) -> list[str]:
    asked: list[str] = []

    def get(url: str, **kwargs: Any) -> requests.Response:
        asked.append(url)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(smart.requests, "get", get)
    return asked


def test_the_endpoints_come_from_the_smart_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = answering(monkeypatch, response(200, GOOD))
    assert smart.discover(ISS + "/") == smart.Endpoints(GOOD["authorization_endpoint"], GOOD["token_endpoint"])
    assert asked == [f"{ISS}/.well-known/smart-configuration"]


@pytest.mark.parametrize(("answer", "error", "words"), [
    pytest.param(response(404, {}), EhrRejected, "publishes no SMART configuration", id="no-document"),
    pytest.param(response(200, {**GOOD, "code_challenge_methods_supported": ["plain"]}), EhrRejected, "S256", id="no-s256"),
    pytest.param(response(200, {"token_endpoint": GOOD["token_endpoint"]}), EhrRejected, "authorization_endpoint", id="no-authorize"),
    pytest.param(response(200, {**GOOD, "token_endpoint": "http://ehr.example.org/token"}), EhrRejected, "https",
                 id="token-endpoint-in-clear"),
    pytest.param(response(200, ["not", "an", "object"]), EhrRejected, "authorization_endpoint", id="not-an-object"),
    pytest.param(requests.ConnectionError("refused"), EhrUnavailable, "could not be read", id="unreachable"),
])
def test_an_unusable_configuration_is_an_ehr_error(monkeypatch: pytest.MonkeyPatch, answer: Any, error: type, words: str) -> None:
    answering(monkeypatch, answer)
    with pytest.raises(error, match=words):
        smart.discover(ISS)


def test_the_authorization_url_carries_the_s256_challenge_of_the_verifier() -> None:
    verifier = smart.new_verifier()
    url = smart.authorization_url(smart.Endpoints(GOOD["authorization_endpoint"], GOOD["token_endpoint"]), client_id="app",
                                  redirect_uri="https://migraine.example.org/smart/callback", scope=["launch", "patient/Observation.rs"],
                                  iss=ISS, state="st", verifier=verifier, launch="L1")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert query["code_challenge"] == expected and query["code_challenge_method"] == "S256"
    assert query["aud"] == ISS and query["launch"] == "L1" and query["state"] == "st" and query["response_type"] == "code"
    assert verifier not in url and 43 <= len(verifier) <= 128


def test_the_chart_is_read_with_the_clinicians_token_only_from_the_types_the_scopes_allow() -> None:
    session = FakeEhrSession(MONTH + RESCUE)
    chart = smart.read_chart(BASE, "clinician-token", "123", session=session)
    assert len(chart.entries) == len({r["identifier"][0]["value"].split("/")[0] for r in MONTH if r["resourceType"] == "Observation"
                                      and r["identifier"][0]["system"] == DIARY_SYSTEM}) > 0
    assert {r["resourceType"] for r in chart.requests} == {"MedicationRequest"} and len(chart.requests) == sum(
        1 for r in RESCUE if r["resourceType"] == "MedicationRequest")
    assert session.sent and all(s.headers.get("Authorization") == "Bearer clinician-token" for s in session.sent)
    asked = {urlsplit(s.url).path.rsplit("/", 1)[-1] for s in session.sent}
    assert asked <= set(smart.READ_TYPES) and "RequestGroup" not in asked


def test_a_search_the_ehr_refuses_names_itself() -> None:
    session = FakeEhrSession(MONTH, faults={1: Fault(403)})
    with pytest.raises(EhrError, match=r"the search of MedicationRequest: the EHR answered 403"):
        smart.read_chart(BASE, "clinician-token", "Patient/123", session=session)
