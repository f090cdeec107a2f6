"""Authentication to the EHR, against a real token endpoint running in this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_migraine.config import Settings
from fhir_migraine.ehr.auth import (
    Auth,
    BearerToken,
    ClientCredentials,
    NoAuth,
    SmartBackendServices,
    auth_from_settings,
)
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.errors import ConfigError, EhrAuthError
from tests.tokenserver import JWT_BEARER, JwtClient, TokenServer

CLIENT_ID = "fhir-migraine"
SECRET = "s3cret:with/odd+chars ü%"
KEY_ID = "key-2025-01"


class FakeClock:
    """A clock the test moves by hand; it starts at the real time so both ends agree at first."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def keys(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    return {"RS384": rsa_key, "ES384": ec_key}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> Iterator[TokenServer]:
    token_server = TokenServer(
        secrets={CLIENT_ID: SECRET},
        jwt_clients={
            "rsa-client": JwtClient(rsa_key.public_key(), KEY_ID, "RS384"),
            "ec-client": JwtClient(ec_key.public_key(), KEY_ID, "ES384"),
        },
        clock=clock,
    ).start()
    yield token_server
    token_server.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def client_credentials(server: TokenServer, clock: FakeClock, **options: Any) -> ClientCredentials:
    return ClientCredentials(server.url, CLIENT_ID, options.pop("secret", SECRET), options.pop("scope", "system/*.rs"), clock=clock, **options)


def smart(server: TokenServer, clock: Any, keys: dict[str, Any], algorithm: str = "RS384", **options: Any) -> SmartBackendServices:
    client_id = "rsa-client" if algorithm == "RS384" else "ec-client"
    key = options.pop("key", keys[algorithm])
    return SmartBackendServices(server.url, client_id, pem(key), key_id=KEY_ID, algorithm=algorithm, clock=clock, **options)


def bearer_of(headers: dict[str, str]) -> str:
    assert headers["Authorization"].startswith("Bearer ")
    return headers["Authorization"][len("Bearer ") :]


# --- each mode's headers ---------------------------------------------------------------------------


def test_no_auth_adds_no_header(session: requests.Session) -> None:
    assert NoAuth().headers(session) == {}
    NoAuth().invalidate()


def test_a_fixed_bearer_token_is_sent_as_it_is(session: requests.Session) -> None:
    auth = BearerToken("abc.def-123")
    assert auth.headers(session) == {"Authorization": "Bearer abc.def-123"}
    auth.invalidate()
    assert auth.headers(session) == {"Authorization": "Bearer abc.def-123"}


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "tab\t"], ids=["empty", "space", "newline", "tab"])
def test_a_bearer_token_that_cannot_go_in_a_header_is_a_config_error(token: str) -> None:
    with pytest.raises(ConfigError):
        BearerToken(token)


def test_every_kind_of_auth_fits_the_protocol(server: TokenServer, clock: FakeClock, keys: dict[str, Any]) -> None:
    kinds: list[Auth] = [NoAuth(), BearerToken("t"), client_credentials(server, clock), smart(server, clock, keys)]
    assert all(callable(k.headers) and callable(k.invalidate) for k in kinds)


def test_client_credentials_authenticate_by_basic_and_send_a_bearer_token(
    server: TokenServer, clock: FakeClock, session: requests.Session
) -> None:
    headers = client_credentials(server, clock).headers(session)
    assert bearer_of(headers) == server.issued[-1]
    assert server.requests == 1 and server.refusals == []
    assert server.forms == [{"grant_type": "client_credentials", "scope": "system/*.rs"}]


def test_client_credentials_without_a_scope_send_none(server: TokenServer, clock: FakeClock, session: requests.Session) -> None:
    client_credentials(server, clock, scope=None).headers(session)
    assert server.forms == [{"grant_type": "client_credentials"}]


def test_a_wrong_client_secret_is_refused_by_the_server(server: TokenServer, clock: FakeClock, session: requests.Session) -> None:
    with pytest.raises(EhrAuthError) as caught:
        client_credentials(server, clock, secret="not-the-secret").headers(session)
    assert caught.value.status == 401
    assert "invalid_client" in str(caught.value)
    assert "not-the-secret" not in str(caught.value)
    assert server.refusals == ["unknown client or wrong secret"]


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_smart_backend_services_sign_an_assertion_the_server_verifies(
    algorithm: str, server: TokenServer, clock: FakeClock, keys: dict[str, Any], session: requests.Session
) -> None:
    auth = smart(server, clock, keys, algorithm)
    assert bearer_of(auth.headers(session)) == server.issued[-1]
    assert server.refusals == []
    [(header, claims)] = server.assertions
    assert header == {"alg": algorithm, "kid": KEY_ID, "typ": "JWT"}
    assert claims["iss"] == claims["sub"] == auth.client_id
    assert claims["aud"] == server.url
    assert claims["iat"] == int(clock.now) - 30  # set back by the default clock skew
    assert claims["exp"] == claims["iat"] + 240
    [form] = server.forms
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "system/*.rs"
    assert form["client_assertion_type"] == JWT_BEARER


# --- caching ---------------------------------------------------------------------------------------


def test_a_token_is_reused_until_30_seconds_before_it_expires(
    server: TokenServer, clock: FakeClock, session: requests.Session
) -> None:
    server.expires_in = 120
    auth = client_credentials(server, clock)
    first = auth.headers(session)
    clock.advance(89.9)
    assert auth.headers(session) == first
    assert server.requests == 1
    clock.advance(0.1)
    second = auth.headers(session)
    assert second != first
    assert server.requests == 2


def test_a_token_without_expires_in_is_taken_to_live_300_seconds(
    server: TokenServer, clock: FakeClock, keys: dict[str, Any], session: requests.Session
) -> None:
    server.expires_in = None
    auth = smart(server, clock, keys)
    auth.headers(session)
    clock.advance(269)
    auth.headers(session)
    assert server.requests == 1
    clock.advance(1)
    auth.headers(session)
    assert server.requests == 2
    assert server.refusals == []


def test_a_token_shorter_lived_than_the_margin_is_still_used_once(
    server: TokenServer, clock: FakeClock, session: requests.Session
) -> None:
    server.expires_in = 10
    auth = client_credentials(server, clock)
    assert bearer_of(auth.headers(session)) == server.issued[0]
    assert bearer_of(auth.headers(session)) == server.issued[1]


@pytest.mark.parametrize("kind", ["client-credentials", "smart-backend"])
def test_invalidate_makes_the_next_call_fetch_a_new_token(
    kind: str, server: TokenServer, clock: FakeClock, keys: dict[str, Any], session: requests.Session
) -> None:
    auth = client_credentials(server, clock) if kind == "client-credentials" else smart(server, clock, keys)
    first = auth.headers(session)
    assert auth.headers(session) == first
    auth.invalidate()
    assert auth.headers(session) != first
    assert server.requests == 2


def test_eight_threads_asking_at_once_fetch_one_token(server: TokenServer, clock: FakeClock) -> None:
    server.delay = 0.2  # keep the first fetch in flight while the others arrive
    auth = client_credentials(server, clock)
    start = threading.Barrier(8)
    results: list[dict[str, str]] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            with requests.Session() as own:
                start.wait()
                results.append(auth.headers(own))
        except BaseException as exc:  # a failure in a thread must fail the test, not vanish
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert len(results) == 8 and all(r == results[0] for r in results)
    assert server.requests == 1


# --- assertions the server refuses -----------------------------------------------------------------


def test_each_assertion_carries_a_fresh_jti(
    server: TokenServer, clock: FakeClock, keys: dict[str, Any], session: requests.Session
) -> None:
    auth = smart(server, clock, keys, "ES384")
    for _ in range(3):
        auth.invalidate()
        auth.headers(session)
    assert server.refusals == []
    assert len({claims["jti"] for _, claims in server.assertions}) == 3


def test_the_server_refuses_an_assertion_sent_twice(server: TokenServer, clock: FakeClock, keys: dict[str, Any]) -> None:
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": smart(server, clock, keys).assertion(),
    }
    assert requests.post(server.url, data=form, timeout=5).status_code == 200
    again = requests.post(server.url, data=form, timeout=5)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_client"
    assert server.refusals == ["jti has been used before"]


@pytest.mark.parametrize(
    ("skew", "reason"),
    [(-301, "the assertion has expired"), (200, "exp is more than 5 minutes ahead"), (90, "iat is in the future")],
    ids=["expired", "too-far-ahead", "issued-in-the-future"],
)
def test_the_server_refuses_an_assertion_outside_its_five_minutes(
    skew: float, reason: str, server: TokenServer, clock: FakeClock, keys: dict[str, Any], session: requests.Session
) -> None:
    auth = smart(server, lambda: clock() + skew, keys)
    with pytest.raises(EhrAuthError) as caught:
        auth.headers(session)
    assert server.refusals == [reason]
    assert reason in str(caught.value)


def test_the_server_refuses_an_assertion_signed_with_another_key(
    server: TokenServer, clock: FakeClock, keys: dict[str, Any], session: requests.Session
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(EhrAuthError, match="invalid_client"):
        smart(server, clock, keys, key=stranger).headers(session)
    assert server.refusals and server.refusals[0].startswith("the assertion does not verify")


def test_the_server_refuses_an_assertion_with_another_alg(server: TokenServer, clock: FakeClock, keys: dict[str, Any]) -> None:
    claims = {"iss": "rsa-client", "sub": "rsa-client", "aud": server.url, "exp": int(clock()) + 60, "jti": "j1"}
    assertion = jwt.encode(claims, keys["RS384"], algorithm="RS256", headers={"kid": KEY_ID, "typ": "JWT"})
    form = {"grant_type": "client_credentials", "scope": "s", "client_assertion_type": JWT_BEARER, "client_assertion": assertion}
    assert requests.post(server.url, data=form, timeout=5).status_code == 400
    assert server.refusals == ["alg RS256 is not the client's RS384"]


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "HS256", "none", "rs384"])
def test_a_signing_algorithm_other_than_rs384_or_es384_is_a_config_error(algorithm: str, rsa_key: Any) -> None:
    with pytest.raises(ConfigError, match="algorithm"):
        SmartBackendServices("https://ehr.example/token", "c", pem(rsa_key), key_id="k", algorithm=algorithm)


@pytest.mark.parametrize(
    ("algorithm", "make_key", "message"),
    [
        ("ES384", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "P-384"),
        ("ES384", lambda: ec.generate_private_key(ec.SECP256R1()), "P-384"),
        ("RS384", lambda: ec.generate_private_key(ec.SECP384R1()), "RSA"),
        ("RS384", lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "2048"),
    ],
    ids=["rsa-key-for-es384", "p256-key-for-es384", "ec-key-for-rs384", "short-rsa-key"],
)
def test_a_key_that_does_not_fit_the_algorithm_is_a_config_error(algorithm: str, make_key: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SmartBackendServices("https://ehr.example/token", "c", pem(make_key()), key_id="k", algorithm=algorithm)


def test_text_that_is_not_a_pem_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="PEM"):
        SmartBackendServices("https://ehr.example/token", "c", "-----BEGIN PRIVATE KEY-----\nnope\n", key_id="k")


# --- token endpoint failures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fail", "status", "words", "retryable"),
    [
        ("500", 500, "answered 500", True),
        ("invalid_client", 401, "invalid_client - the client is not registered", False),
        ("slow", None, "did not answer within 0.3 s", True),
        ("no_token", 200, "without an access_token", False),
        ("not_json", 200, "without an access_token", False),
        ("mac_token", None, "not a Bearer token", False),
    ],
    ids=["server-error", "invalid-client", "timeout", "no-access-token", "not-json", "not-bearer"],
)
def test_a_failing_token_endpoint_is_an_ehr_auth_error(
    fail: str, status: int | None, words: str, retryable: bool, server: TokenServer, clock: FakeClock, session: requests.Session
) -> None:
    server.fail = fail
    auth = client_credentials(server, clock, timeout=0.3)
    with pytest.raises(EhrAuthError) as caught:
        auth.headers(session)
    error = caught.value
    assert words in str(error)
    assert error.status == status
    assert error.retryable is retryable
    assert SECRET not in str(error)
    # Once the endpoint recovers, the next call gets a token: a failure is not cached.
    server.fail = None
    server.delay = 0.0
    assert bearer_of(auth.headers(session)) == server.issued[-1]


def test_a_server_error_carries_retry_after(server: TokenServer, clock: FakeClock, session: requests.Session) -> None:
    server.fail = "500"
    with pytest.raises(EhrAuthError) as caught:
        client_credentials(server, clock).headers(session)
    assert caught.value.retry_after == 7
    assert "temporarily_unavailable" in str(caught.value)


def test_an_unreachable_token_endpoint_is_an_ehr_auth_error(clock: FakeClock, session: requests.Session) -> None:
    closed = TokenServer()  # bound to a free port, then closed without serving
    url = closed.url
    closed.stop()
    auth = ClientCredentials(url, CLIENT_ID, SECRET, clock=clock, timeout=2)
    with pytest.raises(EhrAuthError, match="could not connect to the token endpoint") as caught:
        auth.headers(session)
    assert caught.value.retryable is True


@pytest.mark.parametrize("kind", ["client-credentials", "smart-backend"])
def test_credentials_echoed_by_the_endpoint_are_blacked_out_of_the_error(
    kind: str, server: TokenServer, clock: FakeClock, keys: dict[str, Any], session: requests.Session
) -> None:
    server.fail = "invalid_client"
    server.echo = True
    auth = client_credentials(server, clock) if kind == "client-credentials" else smart(server, clock, keys)
    with pytest.raises(EhrAuthError) as caught:
        auth.headers(session)
    message = str(caught.value)
    assert "[redacted]" in message
    assert SECRET not in message
    assert "eyJ" not in message  # no JWT, whole or in part
    sent = server.forms[-1].get("client_assertion")
    assert sent is None or sent not in message


def test_secrets_do_not_show_in_repr(rsa_key: Any) -> None:
    shown = repr(ClientCredentials("https://ehr.example/token", "c", SECRET)) + repr(BearerToken("tok-xyz"))
    shown += repr(SmartBackendServices("https://ehr.example/token", "c", pem(rsa_key), key_id="k"))
    assert SECRET not in shown and "tok-xyz" not in shown and "PRIVATE KEY" not in shown


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://ehr.example/token", True),
        ("http://127.0.0.1:9/token", True),
        ("http://localhost/token", True),
        ("http://[::1]/token", True),
        ("http://ehr.example/token", False),
        ("ftp://ehr.example/token", False),
        ("/token", False),
        ("https://user:pw@ehr.example/token", False),
    ],
    ids=["https", "http-loopback-v4", "http-localhost", "http-loopback-v6", "http-remote", "ftp", "relative", "userinfo"],
)
def test_a_token_url_must_be_https_unless_it_is_this_machine(url: str, ok: bool) -> None:
    if ok:
        ClientCredentials(url, "c", "s")
    else:
        with pytest.raises(ConfigError, match="token_url"):
            ClientCredentials(url, "c", "s")


# --- with the FHIR client --------------------------------------------------------------------------


def test_the_fhir_client_renews_a_revoked_token_after_a_401(server: TokenServer, clock: FakeClock) -> None:
    auth = client_credentials(server, clock)
    client = FhirClient(server.fhir_url, auth=auth, timeout=5)
    assert client.metadata()["resourceType"] == "CapabilityStatement"
    server.revoke_all()
    assert client.metadata()["resourceType"] == "CapabilityStatement"
    assert server.requests == 2


# --- auth_from_settings, from the environment -------------------------------------------------------


def auth_of(env: dict[str, str]) -> Auth:
    return auth_from_settings(Settings.from_env(env).ehr.auth)


@pytest.fixture
def key_file(tmp_path: Path, rsa_key: Any) -> Path:
    path = tmp_path / "ehr-key.pem"
    path.write_text(pem(rsa_key), encoding="ascii")
    return path


@pytest.fixture
def ec_key_file(tmp_path: Path, ec_key: Any) -> Path:
    path = tmp_path / "ehr-ec-key.pem"
    path.write_text(pem(ec_key), encoding="ascii")
    return path


TOKEN_URL = "https://ehr.example/oauth2/token"


def test_no_setting_means_no_auth() -> None:
    assert isinstance(auth_of({}), NoAuth)
    assert isinstance(auth_of({"FHIR_MIGRAINE_EHR_AUTH": "none"}), NoAuth)


def test_bearer_mode_reads_the_token(session: requests.Session) -> None:
    auth = auth_of({"FHIR_MIGRAINE_EHR_AUTH": "bearer", "FHIR_MIGRAINE_EHR_TOKEN": "abc\n"})
    assert auth.headers(session) == {"Authorization": "Bearer abc"}


def test_client_credentials_mode_reads_url_id_secret_and_scope() -> None:
    auth = auth_of(
        {
            "FHIR_MIGRAINE_EHR_AUTH": "client-credentials",
            "FHIR_MIGRAINE_EHR_TOKEN_URL": TOKEN_URL,
            "FHIR_MIGRAINE_EHR_CLIENT_ID": "me",
            "FHIR_MIGRAINE_EHR_CLIENT_SECRET": SECRET,
            "FHIR_MIGRAINE_EHR_SCOPE": "system/Observation.c",
        }
    )
    assert isinstance(auth, ClientCredentials)
    assert (auth.token_url, auth.client_id, auth.client_secret, auth.scope) == (TOKEN_URL, "me", SECRET, "system/Observation.c")


def test_smart_backend_mode_reads_the_key_file_and_defaults_to_rs384(key_file: Path) -> None:
    auth = auth_of(
        {
            "FHIR_MIGRAINE_EHR_AUTH": "smart-backend",
            "FHIR_MIGRAINE_EHR_TOKEN_URL": TOKEN_URL,
            "FHIR_MIGRAINE_EHR_CLIENT_ID": "me",
            "FHIR_MIGRAINE_EHR_PRIVATE_KEY": str(key_file),
            "FHIR_MIGRAINE_EHR_KEY_ID": KEY_ID,
        }
    )
    assert isinstance(auth, SmartBackendServices)
    assert (auth.algorithm, auth.scope, auth.key_id) == ("RS384", "system/*.rs", KEY_ID)


def test_smart_backend_mode_works_end_to_end_with_an_es384_key(
    ec_key_file: Path, server: TokenServer, session: requests.Session
) -> None:
    auth = auth_of(
        {
            "FHIR_MIGRAINE_EHR_AUTH": "Smart-Backend",
            "FHIR_MIGRAINE_EHR_TOKEN_URL": server.url,
            "FHIR_MIGRAINE_EHR_CLIENT_ID": "ec-client",
            "FHIR_MIGRAINE_EHR_PRIVATE_KEY": str(ec_key_file),
            "FHIR_MIGRAINE_EHR_KEY_ID": KEY_ID,
            "FHIR_MIGRAINE_EHR_JWT_ALG": "es384",
            "FHIR_MIGRAINE_EHR_SCOPE": "system/Observation.cru",
        }
    )
    assert bearer_of(auth.headers(session)) == server.issued[-1]
    assert server.forms[-1]["scope"] == "system/Observation.cru"


CC = {
    "FHIR_MIGRAINE_EHR_AUTH": "client-credentials",
    "FHIR_MIGRAINE_EHR_TOKEN_URL": TOKEN_URL,
    "FHIR_MIGRAINE_EHR_CLIENT_ID": "me",
    "FHIR_MIGRAINE_EHR_CLIENT_SECRET": "pw",
}
SMART = {
    "FHIR_MIGRAINE_EHR_AUTH": "smart-backend",
    "FHIR_MIGRAINE_EHR_TOKEN_URL": TOKEN_URL,
    "FHIR_MIGRAINE_EHR_CLIENT_ID": "me",
    "FHIR_MIGRAINE_EHR_PRIVATE_KEY": "KEY_FILE",  # replaced by the key file's path
    "FHIR_MIGRAINE_EHR_KEY_ID": KEY_ID,
}


def without(env: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != name}


BAD_SETTINGS = [
    ("unknown-mode", {"FHIR_MIGRAINE_EHR_AUTH": "kerberos"}, "FHIR_MIGRAINE_EHR_AUTH"),
    ("bearer-without-token", {"FHIR_MIGRAINE_EHR_AUTH": "bearer"}, "FHIR_MIGRAINE_EHR_TOKEN"),
    ("bearer-token-with-space", {"FHIR_MIGRAINE_EHR_AUTH": "bearer", "FHIR_MIGRAINE_EHR_TOKEN": "a b"}, "FHIR_MIGRAINE_EHR_TOKEN"),
    ("token-without-mode", {"FHIR_MIGRAINE_EHR_TOKEN": "abc"}, "FHIR_MIGRAINE_EHR_TOKEN"),
    ("cc-without-url", without(CC, "FHIR_MIGRAINE_EHR_TOKEN_URL"), "FHIR_MIGRAINE_EHR_TOKEN_URL"),
    ("cc-without-client-id", without(CC, "FHIR_MIGRAINE_EHR_CLIENT_ID"), "FHIR_MIGRAINE_EHR_CLIENT_ID"),
    ("cc-without-secret", without(CC, "FHIR_MIGRAINE_EHR_CLIENT_SECRET"), "FHIR_MIGRAINE_EHR_CLIENT_SECRET"),
    ("cc-with-empty-secret", {**CC, "FHIR_MIGRAINE_EHR_CLIENT_SECRET": " "}, "FHIR_MIGRAINE_EHR_CLIENT_SECRET"),
    ("cc-with-http-url", {**CC, "FHIR_MIGRAINE_EHR_TOKEN_URL": "http://ehr.example/t"}, "FHIR_MIGRAINE_EHR_TOKEN_URL"),
    ("cc-with-a-key", {**CC, "FHIR_MIGRAINE_EHR_PRIVATE_KEY": "k.pem"}, "FHIR_MIGRAINE_EHR_PRIVATE_KEY"),
    ("cc-with-a-token", {**CC, "FHIR_MIGRAINE_EHR_TOKEN": "abc"}, "FHIR_MIGRAINE_EHR_TOKEN"),
    ("bearer-with-a-secret", {"FHIR_MIGRAINE_EHR_AUTH": "bearer", "FHIR_MIGRAINE_EHR_TOKEN": "t", "FHIR_MIGRAINE_EHR_CLIENT_SECRET": "pw"}, "FHIR_MIGRAINE_EHR_CLIENT_SECRET"),
    ("smart-with-a-secret", {**SMART, "FHIR_MIGRAINE_EHR_CLIENT_SECRET": "pw"}, "FHIR_MIGRAINE_EHR_CLIENT_SECRET"),
    ("smart-without-key", without(SMART, "FHIR_MIGRAINE_EHR_PRIVATE_KEY"), "FHIR_MIGRAINE_EHR_PRIVATE_KEY"),
    ("smart-without-key-id", without(SMART, "FHIR_MIGRAINE_EHR_KEY_ID"), "FHIR_MIGRAINE_EHR_KEY_ID"),
    ("smart-without-url", without(SMART, "FHIR_MIGRAINE_EHR_TOKEN_URL"), "FHIR_MIGRAINE_EHR_TOKEN_URL"),
    ("smart-with-rs256", {**SMART, "FHIR_MIGRAINE_EHR_JWT_ALG": "RS256"}, "FHIR_MIGRAINE_EHR_JWT_ALG"),
    ("smart-es384-with-rsa-key", {**SMART, "FHIR_MIGRAINE_EHR_JWT_ALG": "ES384"}, "FHIR_MIGRAINE_EHR_PRIVATE_KEY"),
    ("smart-key-file-missing", {**SMART, "FHIR_MIGRAINE_EHR_PRIVATE_KEY": "/nonexistent/key.pem"}, "FHIR_MIGRAINE_EHR_PRIVATE_KEY"),
]


@pytest.mark.parametrize(("env", "variable"), [case[1:] for case in BAD_SETTINGS], ids=[case[0] for case in BAD_SETTINGS])
def test_missing_or_contradictory_settings_are_a_config_error_naming_the_variable(
    env: dict[str, str], variable: str, key_file: Path
) -> None:
    env = {k: str(key_file) if v == "KEY_FILE" else v for k, v in env.items()}
    with pytest.raises(ConfigError) as caught:
        auth_of(env)
    assert variable in str(caught.value)
    assert "pw" not in str(caught.value).replace("PRIVATE", "")


# --- the assertion's lifetime and the clock skew it allows for -------------------------------------


@pytest.mark.parametrize("skew", [0, 30, 120])
def test_an_assertion_expires_four_minutes_after_its_iat_set_back_by_the_clock_skew(
    skew: int, server: TokenServer, clock: FakeClock, keys: dict[str, Any], session: requests.Session
) -> None:
    auth = smart(server, clock, keys, clock_skew=skew)
    auth.headers(session)
    [(_, claims)] = server.assertions
    assert claims["iat"] == int(clock.now) - skew
    assert claims["exp"] - claims["iat"] == 240
    assert claims["exp"] - int(clock.now) <= 300  # SMART Backend Services: no more than five minutes ahead


@pytest.mark.parametrize(
    ("ahead", "allowed", "refusal"),
    [(120, 120, None), (30, 30, None), (-200, 30, None), (60, 30, "iat is in the future"),
     (-211, 30, "the assertion has expired")],
    ids=["lagging-endpoint-within-skew", "default-skew", "endpoint-ahead", "lagging-beyond-skew", "endpoint-far-ahead"],
)
def test_a_token_endpoint_whose_clock_differs_within_the_allowed_skew_accepts_the_assertion(
    ahead: int, allowed: int, refusal: str | None, server: TokenServer, clock: FakeClock, keys: dict[str, Any],
    session: requests.Session
) -> None:
    ours = FakeClock()
    ours.now = clock.now + ahead  # our clock runs this many seconds ahead of the token endpoint's
    auth = smart(server, ours, keys, clock_skew=allowed)
    if refusal is None:
        assert bearer_of(auth.headers(session)) == server.issued[-1]
        assert server.refusals == []
    else:
        with pytest.raises(EhrAuthError, match=refusal):
            auth.headers(session)


@pytest.mark.parametrize("skew", [-1, 121, 300])
def test_a_clock_skew_outside_0_to_120_seconds_is_a_config_error(skew: int, rsa_key: Any) -> None:
    with pytest.raises(ConfigError, match="clock_skew"):
        SmartBackendServices("https://ehr.example/token", "c", pem(rsa_key), key_id="k", clock_skew=skew)


# --- client_secret_post ------------------------------------------------------------------------------


def test_client_secret_post_sends_the_id_and_secret_in_the_form_and_no_basic_header(
    server: TokenServer, clock: FakeClock, session: requests.Session
) -> None:
    auth = client_credentials(server, clock, method="client_secret_post")
    assert bearer_of(auth.headers(session)) == server.issued[-1]
    assert server.refusals == []  # the server refuses a request that also carries Basic credentials
    assert server.forms == [
        {"grant_type": "client_credentials", "scope": "system/*.rs", "client_id": CLIENT_ID, "client_secret": SECRET}
    ]


def test_a_wrong_secret_sent_by_post_is_refused_and_not_repeated(
    server: TokenServer, clock: FakeClock, session: requests.Session
) -> None:
    server.echo = True
    with pytest.raises(EhrAuthError, match="invalid_client") as caught:
        client_credentials(server, clock, secret="not-the-secret", method="client_secret_post").headers(session)
    assert server.refusals == ["unknown client or wrong secret"]
    assert "not-the-secret" not in str(caught.value)


def test_the_server_refuses_two_client_authentication_methods_at_once(server: TokenServer) -> None:
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
    answer = requests.post(server.url, data=form, auth=(CLIENT_ID, SECRET), timeout=5)
    assert answer.status_code == 401
    assert server.refusals == ["more than one client authentication method"]


def test_an_unknown_client_authentication_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="method"):
        ClientCredentials("https://ehr.example/token", "c", "s", method="private_key_jwt")


def test_the_client_auth_method_setting_chooses_post() -> None:
    auth = auth_of({**CC, "FHIR_MIGRAINE_EHR_CLIENT_AUTH_METHOD": "client_secret_post"})
    assert isinstance(auth, ClientCredentials) and auth.method == "client_secret_post"
    assert isinstance(auth_of(CC), ClientCredentials) and auth_of(CC).method == "client_secret_basic"  # type: ignore[union-attr]


MORE_BAD_SETTINGS = [
    ("unknown-client-auth-method", {**CC, "FHIR_MIGRAINE_EHR_CLIENT_AUTH_METHOD": "tls_client_auth"},
     "FHIR_MIGRAINE_EHR_CLIENT_AUTH_METHOD"),
    ("client-auth-method-with-smart", {**SMART, "FHIR_MIGRAINE_EHR_CLIENT_AUTH_METHOD": "client_secret_post"},
     "FHIR_MIGRAINE_EHR_CLIENT_AUTH_METHOD"),
    ("clock-skew-with-cc", {**CC, "FHIR_MIGRAINE_EHR_CLOCK_SKEW": "30"}, "FHIR_MIGRAINE_EHR_CLOCK_SKEW"),
    ("clock-skew-too-large", {**SMART, "FHIR_MIGRAINE_EHR_CLOCK_SKEW": "121"}, "FHIR_MIGRAINE_EHR_CLOCK_SKEW"),
    ("clock-skew-negative", {**SMART, "FHIR_MIGRAINE_EHR_CLOCK_SKEW": "-5"}, "FHIR_MIGRAINE_EHR_CLOCK_SKEW"),
    ("clock-skew-not-a-number", {**SMART, "FHIR_MIGRAINE_EHR_CLOCK_SKEW": "a minute"}, "FHIR_MIGRAINE_EHR_CLOCK_SKEW"),
]


@pytest.mark.parametrize(("env", "variable"), [case[1:] for case in MORE_BAD_SETTINGS], ids=[case[0] for case in MORE_BAD_SETTINGS])
def test_bad_client_auth_method_or_clock_skew_settings_name_the_variable(
    env: dict[str, str], variable: str, key_file: Path
) -> None:
    env = {k: str(key_file) if v == "KEY_FILE" else v for k, v in env.items()}
    with pytest.raises(ConfigError, match=variable):
        auth_of(env)


def test_the_clock_skew_setting_reaches_the_assertion(key_file: Path) -> None:
    auth = auth_of({**SMART, "FHIR_MIGRAINE_EHR_PRIVATE_KEY": str(key_file), "FHIR_MIGRAINE_EHR_CLOCK_SKEW": "90"})
    assert isinstance(auth, SmartBackendServices) and auth.clock_skew == 90
    assert isinstance(auth_of({**SMART, "FHIR_MIGRAINE_EHR_PRIVATE_KEY": str(key_file)}), SmartBackendServices)


# --- the token endpoint discovered from .well-known/smart-configuration ------------------------------


def without_token_url(env: dict[str, str]) -> dict[str, str]:
    return without(env, "FHIR_MIGRAINE_EHR_TOKEN_URL")


def discovered(server: TokenServer, env: dict[str, str]) -> Auth:
    return auth_from_settings(Settings.from_env(without_token_url(env)).ehr.auth, fhir_base=server.fhir_url, timeout=2)


def test_without_a_token_url_the_one_the_ehr_publishes_is_used_and_asked_once(
    server: TokenServer, session: requests.Session
) -> None:
    auth = discovered(server, {**CC, "FHIR_MIGRAINE_EHR_CLIENT_ID": CLIENT_ID, "FHIR_MIGRAINE_EHR_CLIENT_SECRET": SECRET})
    assert server.well_known_requests == 1  # at start
    assert bearer_of(auth.headers(session)) == server.issued[-1]
    auth.invalidate()
    assert bearer_of(auth.headers(session)) == server.issued[-1]
    assert server.requests == 2 and server.well_known_requests == 1


def test_a_discovered_token_endpoint_is_the_audience_of_the_smart_assertion(
    server: TokenServer, ec_key_file: Path, session: requests.Session
) -> None:
    env = {**SMART, "FHIR_MIGRAINE_EHR_CLIENT_ID": "ec-client", "FHIR_MIGRAINE_EHR_PRIVATE_KEY": str(ec_key_file),
           "FHIR_MIGRAINE_EHR_JWT_ALG": "ES384"}
    auth = discovered(server, env)
    assert bearer_of(auth.headers(session)) == server.issued[-1]
    [(_, claims)] = server.assertions
    assert claims["aud"] == server.url


def test_the_gateway_discovers_the_token_endpoint_and_reads_the_ehr_with_its_token(server: TokenServer) -> None:
    from fhir_migraine.ehr.gateway import client_from_settings

    env = {**without_token_url(CC), "FHIR_MIGRAINE_EHR_CLIENT_ID": CLIENT_ID, "FHIR_MIGRAINE_EHR_CLIENT_SECRET": SECRET,
           "FHIR_MIGRAINE_EHR_URL": server.fhir_url}
    client = client_from_settings(Settings.from_env(env))
    assert client.metadata()["resourceType"] == "CapabilityStatement"
    assert server.well_known_requests == 1 and server.requests == 1


DISCOVERY_FAILURES = [
    ("not-published", 404, {"error": "not found"}, "publishes no SMART configuration"),
    ("no-token-endpoint", 200, {"authorization_endpoint": "https://ehr.example/authorize"}, "names no token_endpoint"),
    ("token-endpoint-not-a-string", 200, {"token_endpoint": ["https://ehr.example/token"]}, "names no token_endpoint"),
    ("not-json", 200, "<html>sign in</html>", "names no token_endpoint"),
    ("plain-http-endpoint", 200, {"token_endpoint": "http://ehr.example/token"}, "must use https"),
    ("relative-endpoint", 200, {"token_endpoint": "/token"}, "absolute https URL"),
]


@pytest.mark.parametrize(("status", "body", "words"), [case[1:] for case in DISCOVERY_FAILURES],
                         ids=[case[0] for case in DISCOVERY_FAILURES])
def test_an_ehr_that_publishes_no_usable_token_endpoint_is_a_config_error_at_start(
    status: int, body: Any, words: str, server: TokenServer
) -> None:
    server.well_known_status, server.well_known = status, body
    with pytest.raises(ConfigError) as caught:
        discovered(server, CC)
    assert words in str(caught.value)
    assert "FHIR_MIGRAINE_EHR_TOKEN_URL" in str(caught.value) or "token_endpoint of" in str(caught.value)
    assert "/.well-known/smart-configuration" in str(caught.value)


def test_an_ehr_busy_at_start_is_asked_again_before_the_first_token(server: TokenServer, session: requests.Session) -> None:
    server.well_known_status = 503
    auth = discovered(server, {**CC, "FHIR_MIGRAINE_EHR_CLIENT_ID": CLIENT_ID, "FHIR_MIGRAINE_EHR_CLIENT_SECRET": SECRET})
    with pytest.raises(EhrAuthError) as caught:  # still busy: retryable, so the outbox tries again later
        auth.headers(session)
    assert caught.value.retryable is True and caught.value.status == 503
    assert server.requests == 0
    server.well_known_status = 200
    assert bearer_of(auth.headers(session)) == server.issued[-1]
    assert server.well_known_requests == 3


def test_a_discovery_failure_after_start_is_a_final_auth_error(server: TokenServer, session: requests.Session) -> None:
    server.well_known_status = 503
    auth = discovered(server, CC)
    server.well_known_status = 404
    with pytest.raises(EhrAuthError, match="publishes no SMART configuration") as caught:
        auth.headers(session)
    assert caught.value.retryable is False


def test_an_unreachable_ehr_at_start_does_not_stop_the_start(session: requests.Session) -> None:
    closed = TokenServer()
    base = closed.fhir_url
    closed.stop()
    auth = auth_from_settings(Settings.from_env(without_token_url(CC)).ehr.auth, fhir_base=base, timeout=2)
    with pytest.raises(EhrAuthError, match="could not connect") as caught:
        auth.headers(session)
    assert caught.value.retryable is True


def test_without_a_token_url_or_an_ehr_url_the_config_error_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="FHIR_MIGRAINE_EHR_TOKEN_URL"):
        auth_of(without_token_url(CC))


def test_the_cli_exits_2_when_discovery_finds_no_token_endpoint(
    server: TokenServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from fhir_migraine.cli import main

    server.well_known_status = 404
    for name, value in {**without_token_url(CC), "FHIR_MIGRAINE_DB": str(tmp_path / "db.sqlite3")}.items():
        monkeypatch.setenv(name, value)
    err = io.StringIO()
    assert main(["pull", "--patient", "Patient/1", "--ehr", server.fhir_url], out=io.StringIO(), err=err) == 2
    assert "set FHIR_MIGRAINE_EHR_TOKEN_URL" in err.getvalue()
    assert "pw" not in err.getvalue()
