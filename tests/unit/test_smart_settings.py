"""The SMART app's settings from FHIR_MIGRAINE_SMART_* and FHIR_MIGRAINE_PUBLIC_URL."""

from __future__ import annotations

import pytest

from fhir_migraine.config import SMART_SCOPES, Settings, SmartSettings
from fhir_migraine.errors import ConfigError

FULL = {"FHIR_MIGRAINE_SMART_CLIENT_ID": "diary-app",
        "FHIR_MIGRAINE_SMART_ISSUERS": "https://ehr.example.org/fhir/ , https://other.example.org/r4",
        "FHIR_MIGRAINE_PUBLIC_URL": "https://migraine.example.org/"}


def test_without_a_client_id_the_app_is_off() -> None:
    assert Settings.from_env({}).smart == SmartSettings()
    assert not SmartSettings().enabled


def test_the_settings_are_read_and_trimmed() -> None:
    smart = Settings.from_env({**FULL, "FHIR_MIGRAINE_SMART_SESSION_TTL": "900", "FHIR_MIGRAINE_SMART_ALLOW_HTTP": "true",
                               "FHIR_MIGRAINE_SMART_FRAME_ANCESTORS": "https://portal.example.org"}).smart
    assert smart.enabled and smart.client_id == "diary-app"
    assert smart.issuers == ("https://ehr.example.org/fhir", "https://other.example.org/r4")
    assert smart.public_url == "https://migraine.example.org"
    assert smart.session_ttl == 900 and smart.allow_http and smart.frame_ancestors == ("https://portal.example.org",)


@pytest.mark.parametrize(("changes", "named"), [
    pytest.param({"FHIR_MIGRAINE_SMART_ISSUERS": ""}, "FHIR_MIGRAINE_SMART_CLIENT_ID", id="no-issuers"),
    pytest.param({"FHIR_MIGRAINE_PUBLIC_URL": ""}, "FHIR_MIGRAINE_SMART_CLIENT_ID", id="no-public-url"),
    pytest.param({"FHIR_MIGRAINE_SMART_ISSUERS": "ehr.example.org/fhir"}, "FHIR_MIGRAINE_SMART_ISSUERS", id="issuer-no-scheme"),
    pytest.param({"FHIR_MIGRAINE_PUBLIC_URL": "https://x.example.org/?a=1"}, "FHIR_MIGRAINE_PUBLIC_URL", id="public-url-query"),
    pytest.param({"FHIR_MIGRAINE_SMART_SESSION_TTL": "0"}, "FHIR_MIGRAINE_SMART_SESSION_TTL", id="ttl-zero"),
    pytest.param({"FHIR_MIGRAINE_SMART_FRAME_ANCESTORS": "https://x.example.org/path"}, "FHIR_MIGRAINE_SMART_FRAME_ANCESTORS",
                 id="ancestor-not-an-origin"),
])
def test_a_bad_smart_setting_is_a_config_error_naming_it(changes: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env({**FULL, **changes})


def test_the_app_asks_for_read_scopes_only() -> None:
    assert SMART_SCOPES and all(s.startswith("patient/") and s.endswith(".rs") for s in SMART_SCOPES)
    assert {s.split("/")[1].split(".")[0] for s in SMART_SCOPES} == {
        "Patient", "Observation", "MedicationStatement", "MedicationRequest", "QuestionnaireResponse", "DocumentReference"}
