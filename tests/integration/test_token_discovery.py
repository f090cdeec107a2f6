"""The EHR credentials against the real test EHR: a HAPI server publishes no SMART configuration,
so discovery must stop the start with a configuration error; a configured token endpoint (the
local token server, ``client_secret_post``) gives tokens the client sends with real FHIR requests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fhir_migraine.cli import main
from fhir_migraine.config import Settings
from fhir_migraine.ehr.gateway import client_from_settings
from fhir_migraine.errors import ConfigError
from tests.tokenserver import TokenServer

CLIENT = {"FHIR_MIGRAINE_EHR_AUTH": "client-credentials", "FHIR_MIGRAINE_EHR_CLIENT_ID": "fhir-migraine",
          "FHIR_MIGRAINE_EHR_CLIENT_SECRET": "integration-secret"}


def test_an_ehr_without_a_smart_configuration_is_a_config_error_at_start(ehr_url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        client_from_settings(Settings.from_env({**CLIENT, "FHIR_MIGRAINE_EHR_URL": ehr_url}))
    message = str(caught.value)
    assert f"{ehr_url}/.well-known/smart-configuration answered 404" in message
    assert "set FHIR_MIGRAINE_EHR_TOKEN_URL" in message


def test_the_cli_exits_2_against_an_ehr_without_a_smart_configuration(
    ehr_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**CLIENT, "FHIR_MIGRAINE_DB": str(tmp_path / "db.sqlite3")}.items():
        monkeypatch.setenv(name, value)
    err = io.StringIO()
    assert main(["pull", "--patient", "Patient/1", "--ehr", ehr_url], out=io.StringIO(), err=err) == 2
    assert "smart-configuration" in err.getvalue()


def test_tokens_from_a_client_secret_post_grant_go_with_real_fhir_requests(ehr_url: str) -> None:
    server = TokenServer(secrets={"fhir-migraine": "integration-secret"}).start()
    try:
        env = {**CLIENT, "FHIR_MIGRAINE_EHR_URL": ehr_url, "FHIR_MIGRAINE_EHR_TOKEN_URL": server.url,
               "FHIR_MIGRAINE_EHR_CLIENT_AUTH_METHOD": "client_secret_post"}
        client = client_from_settings(Settings.from_env(env))
        assert client.metadata()["resourceType"] == "CapabilityStatement"
        pages = list(client.search("Observation", {"_count": "1", "_summary": "count"}))
        assert pages and pages[0]["resourceType"] == "Bundle"
        assert server.requests == 1 and server.refusals == []  # one token, reused for both requests
        assert server.forms[0]["client_id"] == "fhir-migraine"
    finally:
        server.stop()
