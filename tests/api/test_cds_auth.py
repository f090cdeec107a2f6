"""The CDS Hooks 2.0 JWT of each call: what is accepted, and every way one is refused (401)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jwt
import pytest

from fhir_migraine.api import create_app
from fhir_migraine.cds import services as cds
from tests.cdshooks import EHR_ISS, PUBLIC_URL, Ehr, FakeServer, ec_key, jwks, rsa_key, sign_request, trusting

SIGN = "migraine-order-sign"


@pytest.fixture(scope="module")
def ehr_key() -> Any:
    return rsa_key()


@pytest.fixture
def ehr(ehr_key) -> Ehr:
    return Ehr(ehr_key)


@pytest.fixture
def cds_app(settings, tmp_path, ehr, monkeypatch):
    monkeypatch.setattr(cds, "answer", lambda *args, **kwargs: {"cards": []})
    app = create_app(trusting(settings, tmp_path, ehr))
    app.config["TESTING"] = True
    return app


def call(app, headers: dict[str, str], service: str = SIGN):
    return app.test_client().post(f"/cds-services/{service}", json=sign_request(), headers=headers)


def test_a_call_signed_by_the_trusted_ehr_is_answered(cds_app, ehr) -> None:
    answer = call(cds_app, ehr.headers(SIGN))
    assert answer.status_code == 200
    assert answer.get_json() == {"cards": []}


def test_an_es384_token_is_accepted_too(settings, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cds, "answer", lambda *args, **kwargs: {"cards": []})
    ehr = Ehr(ec_key(), alg="ES384")
    app = create_app(trusting(settings, tmp_path, ehr))
    assert call(app, ehr.headers(SIGN)).status_code == 200


def refused(answer, reason: str) -> None:
    assert answer.status_code == 401
    assert answer.mimetype == "application/problem+json"
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="cds-services", error="invalid_token"')
    assert reason in answer.get_json()["detail"]


def test_no_authorization_header_is_a_401(cds_app) -> None:
    refused(call(cds_app, {}), "needs 'Authorization: Bearer <JWT>'")


def test_the_services_own_static_token_is_not_a_cds_jwt(cds_app) -> None:
    from tests.conftest import API_TOKEN

    refused(call(cds_app, {"Authorization": f"Bearer {API_TOKEN}"}), "not a JWT")


def test_a_token_signed_with_another_key_is_refused(cds_app, ehr) -> None:
    refused(call(cds_app, ehr.headers(SIGN, key=rsa_key())), "signature")


def test_an_expired_token_is_refused(cds_app, ehr) -> None:
    refused(call(cds_app, ehr.headers(SIGN, exp_in=-120)), "expired")


def test_a_replayed_jti_is_refused(cds_app, ehr) -> None:
    token = ehr.token(SIGN)
    assert call(cds_app, {"Authorization": f"Bearer {token}"}).status_code == 200
    refused(call(cds_app, {"Authorization": f"Bearer {token}"}), "used before")


def test_a_replayed_jti_is_refused_by_another_process_of_the_same_database(cds_app, settings, tmp_path, ehr) -> None:
    token = ehr.token(SIGN)
    assert call(cds_app, {"Authorization": f"Bearer {token}"}).status_code == 200
    other = create_app(trusting(settings, tmp_path, ehr))
    refused(call(other, {"Authorization": f"Bearer {token}"}), "used before")


def test_a_token_for_another_service_is_refused(cds_app, ehr) -> None:
    refused(call(cds_app, ehr.headers("migraine-patient-view")), "'aud'")


def test_a_token_for_another_host_is_refused(cds_app, ehr) -> None:
    refused(call(cds_app, ehr.headers(SIGN, aud=f"https://elsewhere.example/cds-services/{SIGN}")), "'aud'")


def test_an_untrusted_issuer_is_refused(cds_app, ehr) -> None:
    stranger = Ehr(ehr.key, iss="https://stranger.example")
    refused(call(cds_app, stranger.headers(SIGN)), "'iss'")


@pytest.mark.parametrize("claim", ["jti", "exp", "iat", "aud"])
def test_a_token_without_a_required_claim_is_refused(cds_app, ehr, claim: str) -> None:
    refused(call(cds_app, ehr.headers(SIGN, drop=(claim,))), f"no '{claim}' claim")


def test_a_token_living_longer_than_five_minutes_is_refused(cds_app, ehr) -> None:
    refused(call(cds_app, ehr.headers(SIGN, exp_in=3600)), "five minutes")


def test_alg_none_is_refused(cds_app, ehr) -> None:
    token = jwt.encode({"iss": EHR_ISS, "aud": f"{PUBLIC_URL}/cds-services/{SIGN}", "exp": 9999999999, "iat": 1,
                        "jti": "x"}, None, algorithm="none", headers={"kid": ehr.kid})
    refused(call(cds_app, {"Authorization": f"Bearer {token}"}), "'alg'")


def test_an_hmac_token_is_refused(cds_app, ehr) -> None:
    # The classic confusion: a shared secret where only the EHR's asymmetric keys may sign.
    refused(call(cds_app, ehr.headers(SIGN, key=b"a-shared-secret-of-32-bytes-long", alg="HS256")), "'alg'")


def test_an_rs256_token_is_refused_when_only_rs384_and_es384_are_accepted(cds_app, ehr) -> None:
    refused(call(cds_app, ehr.headers(SIGN, alg="RS256")), "'alg'")


def test_a_token_without_kid_is_refused(cds_app, ehr) -> None:
    refused(call(cds_app, ehr.headers(SIGN, headers={"kid": None})), "'kid'")


def test_an_unknown_kid_is_refused(cds_app, ehr) -> None:
    refused(call(cds_app, ehr.headers(SIGN, headers={"kid": "another-key"})), "'kid'")


def test_a_jku_not_on_the_allow_list_is_refused_before_anything_is_fetched(cds_app, ehr) -> None:
    with FakeServer({"/jwks.json": jwks(ehr.key)}).running() as keys:
        refused(call(cds_app, ehr.headers(SIGN, headers={"jku": f"{keys.url}/jwks.json"})), "'jku'")
    assert keys.seen == []


def test_a_jku_on_the_allow_list_gives_the_key(settings, tmp_path, ehr, monkeypatch) -> None:
    monkeypatch.setattr(cds, "answer", lambda *args, **kwargs: {"cards": []})
    with FakeServer({"/jwks.json": jwks(ehr.key)}).running() as keys:
        url = f"{keys.url}/jwks.json"
        trusted = trusting(settings, tmp_path, ehr, jku_allowed=((EHR_ISS, url),))
        app = create_app(replace(trusted, cds=replace(trusted.cds, issuers=((EHR_ISS, None),))))
        assert call(app, ehr.headers(SIGN, headers={"jku": url})).status_code == 200
        refused(call(app, ehr.headers(SIGN)), "no key set is configured")
    assert [s.path for s in keys.seen] == ["/jwks.json"]


def test_without_cds_settings_every_call_is_refused(app, ehr) -> None:
    refused(call(app, ehr.headers(SIGN)), "not configured")


def test_a_feedback_token_may_name_the_feedback_url(cds_app, ehr) -> None:
    body = {"feedback": [{"card": "c1", "outcome": "accepted", "outcomeTimestamp": "2026-12-01T10:00:00Z"}]}
    headers = ehr.headers(SIGN, aud=f"{PUBLIC_URL}/cds-services/{SIGN}/feedback")
    assert cds_app.test_client().post(f"/cds-services/{SIGN}/feedback", json=body, headers=headers).status_code == 200
    assert call(cds_app, ehr.headers(SIGN, aud=f"{PUBLIC_URL}/cds-services/{SIGN}/feedback")).status_code == 401


def test_a_jku_allowed_for_one_issuer_does_not_serve_another(settings, tmp_path, ehr, monkeypatch) -> None:
    monkeypatch.setattr(cds, "answer", lambda *args, **kwargs: {"cards": []})
    other = "https://other-ehr.example.org"
    with FakeServer({"/jwks.json": jwks(ehr.key)}).running() as keys:
        url = f"{keys.url}/jwks.json"
        trusted = trusting(settings, tmp_path, ehr, jku_allowed=((EHR_ISS, url),))
        app = create_app(replace(trusted, cds=replace(trusted.cds, issuers=((EHR_ISS, None), (other, None)))))
        # The first EHR's key, claiming to be the other trusted EHR.
        refused(call(app, Ehr(ehr.key, iss=other).headers(SIGN, headers={"jku": url})), "'jku'")
    assert keys.seen == []
