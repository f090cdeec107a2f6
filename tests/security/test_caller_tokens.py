"""Caller JWTs: a token is good here only if it names this service as its audience (and the
configured issuer); scopes decide what it may do; a protocol change needs a subject. Plain-http
EHR URLs are refused unless the host is this machine or the setting allows it."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fhir_migraine.api import create_app
from fhir_migraine.config import ApiAuthSettings, EhrSettings, Settings
from fhir_migraine.ehr.gateway import EhrGateway, check_ehr_url
from fhir_migraine.errors import ConfigError
from tests.cases import PROTOCOL

AUDIENCE = "https://migraine.hospital.test"
ISSUER = "https://idp.hospital.test"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwt_app(settings: Settings, key: rsa.RSAPrivateKey) -> Any:
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    api = ApiAuthSettings(jwt_key=public, jwt_algorithms=("RS256",), jwt_audience=AUDIENCE, jwt_issuer=ISSUER)
    return create_app(replace(settings, api=api))


def token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    body = {"aud": AUDIENCE, "iss": ISSUER, "sub": "dr-author", "exp": int(time.time()) + 300,
            "scope": "migraine:read migraine:write"} | claims
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256")


def get(app: Any, bearer: str) -> int:
    return app.test_client().get("/protocols", headers={"Authorization": f"Bearer {bearer}"}).status_code


def test_a_token_for_this_audience_and_issuer_is_accepted(jwt_app, key) -> None:
    assert get(jwt_app, token(key)) == 200


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"aud": "https://another-service.hospital.test"}, id="another-audience"),
        pytest.param({"aud": None}, id="no-audience"),
        pytest.param({"iss": "https://rogue-idp.test"}, id="another-issuer"),
        pytest.param({"iss": None}, id="no-issuer"),
        pytest.param({"exp": int(time.time()) - 60}, id="expired"),
        pytest.param({"exp": None}, id="no-expiry"),
    ],
)
def test_a_token_signed_by_the_same_key_for_something_else_is_refused(jwt_app, key, claims: dict[str, Any]) -> None:
    assert get(jwt_app, token(key, **claims)) == 401


def test_a_jwt_key_without_an_audience_is_a_configuration_error(settings: Settings, key) -> None:
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(ConfigError, match="FHIR_MIGRAINE_API_JWT_AUDIENCE"):
        create_app(replace(settings, api=ApiAuthSettings(jwt_key=public)))


def test_the_same_static_token_for_writers_and_authors_is_a_configuration_error(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="must differ"):
        create_app(replace(settings, api=ApiAuthSettings(token="same", protocols_token="same")))


def test_the_protocols_scope_lets_an_author_change_protocols_and_records_the_subject(jwt_app, key) -> None:
    client = jwt_app.test_client()
    writer = {"Authorization": f"Bearer {token(key)}"}
    author = {"Authorization": f"Bearer {token(key, scope='migraine:read migraine:protocols', sub='dr-author')}"}
    assert client.put("/protocols/test-rescue", json=PROTOCOL, headers=writer).status_code == 403
    assert client.put("/protocols/test-rescue", json=PROTOCOL, headers=author).status_code == 201
    changes = client.get("/protocols/test-rescue/history", headers=writer).get_json()["changes"]
    assert [c["subject"] for c in changes] == ["dr-author"]


def test_a_protocol_change_needs_a_subject(jwt_app, key) -> None:
    anonymous = token(key, scope="migraine:protocols migraine:read", sub=None)
    answer = jwt_app.test_client().put("/protocols/test-rescue", json=PROTOCOL, headers={"Authorization": f"Bearer {anonymous}"})
    assert answer.status_code == 403
    assert "sub" in answer.get_json()["detail"]


def test_the_protocols_scope_does_not_grant_writing_orders(jwt_app, key) -> None:
    author = token(key, scope="migraine:read migraine:protocols")
    assert jwt_app.test_client().post("/orders", json={}, headers={"Authorization": f"Bearer {author}"}).status_code == 403


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://ehr.hospital.test/fhir", True),
        ("http://localhost:8090/fhir", True),
        ("http://127.0.0.1:8090/fhir", True),
        ("http://[::1]:8090/fhir", True),
        ("http://ehr.hospital.test/fhir", False),
        ("http://10.1.2.3/fhir", False),
        ("ftp://ehr.hospital.test/fhir", False),
        ("https:///fhir", False),
    ],
)
def test_plain_http_goes_only_to_this_machine(url: str, allowed: bool) -> None:
    if allowed:
        check_ehr_url(url)
    else:
        with pytest.raises(ConfigError, match="EHR URL"):
            check_ehr_url(url)


def test_plain_http_to_another_host_needs_the_explicit_setting(tmp_path) -> None:
    settings = Settings(database=str(tmp_path / "db.sqlite3"), ehr=EhrSettings(url="http://ehr.hospital.test/fhir"))
    with pytest.raises(ConfigError, match="FHIR_MIGRAINE_EHR_ALLOW_HTTP"):
        EhrGateway.from_settings(settings)
    allowed = replace(settings, ehr=replace(settings.ehr, allow_http=True))
    assert EhrGateway.from_settings(allowed).ehr is not None
