"""The CDS Hooks settings read from FHIR_MIGRAINE_CDS_* (and FHIR_MIGRAINE_PUBLIC_URL)."""

from __future__ import annotations

import pytest

from fhir_migraine.config import CdsSettings, Settings
from fhir_migraine.errors import ConfigError


def test_the_defaults_trust_no_ehr() -> None:
    cds = Settings.from_env({}).cds
    assert cds == CdsSettings()
    assert cds.issuers == () and cds.algorithms == ("RS384", "ES384") and cds.allowed_origins == ("*",)


def test_issuers_with_and_without_their_jwks(tmp_path) -> None:
    jwks = tmp_path / "ehr.jwks"
    jwks.write_text('{"keys": []}')
    cds = Settings.from_env({
        "FHIR_MIGRAINE_PUBLIC_URL": "https://migraine.example.org/",
        "FHIR_MIGRAINE_CDS_ISSUERS": f"https://a.example {jwks}, https://b.example https://b.example/jwks ,https://c.example",
        "FHIR_MIGRAINE_CDS_JKU_ALLOWED": "https://c.example https://c.example/keys.json",
        "FHIR_MIGRAINE_CDS_ALGORITHMS": "es384, rs384",
        "FHIR_MIGRAINE_CDS_ALLOWED_ORIGINS": "https://ehr-web.example",
        "FHIR_MIGRAINE_CDS_FETCH_TIMEOUT": "2.5",
    }).cds
    assert cds.public_url == "https://migraine.example.org"
    assert cds.issuers == (("https://a.example", str(jwks)), ("https://b.example", "https://b.example/jwks"),
                           ("https://c.example", None))
    assert cds.trusts("https://c.example") and not cds.trusts("https://d.example")
    assert cds.jwks_of("https://b.example") == "https://b.example/jwks"
    assert cds.jku_allowed == (("https://c.example", "https://c.example/keys.json"),)
    assert cds.algorithms == ("ES384", "RS384")
    assert cds.allowed_origins == ("https://ehr-web.example",)
    assert cds.fetch_timeout == 2.5


@pytest.mark.parametrize(("env", "message"), [
    ({"FHIR_MIGRAINE_CDS_ISSUERS": "https://a.example /no/such/file"}, "neither a URL nor a file"),
    ({"FHIR_MIGRAINE_CDS_ISSUERS": "https://a.example one two"}, "optionally followed"),
    ({"FHIR_MIGRAINE_CDS_ISSUERS": "https://a.example http://a.example/jwks"}, "must be https"),
    ({"FHIR_MIGRAINE_CDS_JKU_ALLOWED": "https://a.example http://a.example/jwks"}, "must be https"),
    ({"FHIR_MIGRAINE_CDS_JKU_ALLOWED": "https://a.example/jwks"}, "an issuer, a space and a jku URL"),
    ({"FHIR_MIGRAINE_CDS_ALGORITHMS": "none"}, "FHIR_MIGRAINE_CDS_ALGORITHMS"),
    ({"FHIR_MIGRAINE_CDS_ALGORITHMS": "HS256"}, "FHIR_MIGRAINE_CDS_ALGORITHMS"),
    ({"FHIR_MIGRAINE_CDS_ALLOWED_ORIGINS": "https://ehr.example/path"}, "FHIR_MIGRAINE_CDS_ALLOWED_ORIGINS"),
    ({"FHIR_MIGRAINE_CDS_FETCH_TIMEOUT": "0"}, "FHIR_MIGRAINE_CDS_FETCH_TIMEOUT"),
], ids=["jwks-missing", "three-words", "http-jwks", "http-jku", "jku-without-issuer", "alg-none", "alg-hmac",
        "origin-with-path", "timeout-zero"])
def test_a_bad_value_is_a_config_error_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_plain_http_jwks_urls_only_when_allowed() -> None:
    env = {"FHIR_MIGRAINE_CDS_JKU_ALLOWED": "https://a.example http://127.0.0.1:8000/jwks",
           "FHIR_MIGRAINE_CDS_ALLOW_HTTP": "true"}
    cds = Settings.from_env(env).cds
    assert cds.jku_allowed == (("https://a.example", "http://127.0.0.1:8000/jwks"),) and cds.allow_http
