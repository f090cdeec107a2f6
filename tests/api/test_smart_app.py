"""The SMART app's launch, callback and pages through the Flask test client, against the test
SMART server (``tests.smartehr``) with no FHIR server behind it: every bad launch is a clear
page with a 4xx, nothing leaks into logs or URLs, and the pages are open to browsers only."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from fhir_migraine.api import create_app
from fhir_migraine.config import SmartSettings
from tests.conftest import API_TOKEN, examples
from tests.smartehr import Running, SmartEhr

PUBLIC = "http://localhost:5999"
CLIENT_ID = "migraine-diary-app"


@pytest.fixture
def smart_ehr():
    running = Running(SmartEhr(CLIENT_ID, f"{PUBLIC}/smart/callback", standalone_patient="Patient/standalone-1"))
    yield running.ehr
    running.stop()


@pytest.fixture
def smart_client(settings, smart_ehr):
    smart = SmartSettings(client_id=CLIENT_ID, issuers=(smart_ehr.iss,), public_url=PUBLIC)
    app = create_app(replace(settings, smart=smart))
    return app.test_client()


def authorize(smart_client: Any, query: str) -> str:
    """Launch, let the test EHR approve, and return the callback's query string."""
    started = smart_client.get(f"/smart/launch{query}")
    assert started.status_code == 302, started.get_data(as_text=True)
    answer = requests.get(started.headers["Location"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(f"{PUBLIC}/smart/callback?")
    return location.split("?", 1)[1]


def open_session(smart_client: Any, smart_ehr: SmartEhr, patient: str = "Patient/p-1") -> str:
    """The path of the session page the callback's loading page goes on to."""
    launch = smart_ehr.new_launch(patient)
    answer = smart_client.get(f"/smart/callback?{authorize(smart_client, f'?iss={smart_ehr.iss}&launch={launch}')}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    found = re.search(r'http-equiv="refresh" content="0; url=(/smart/s/[^/"]+/)"', answer.get_data(as_text=True))
    assert found is not None
    return found.group(1)


def test_an_ehr_launch_asks_for_a_code_with_pkce_s256_and_read_scopes_only(smart_client, smart_ehr) -> None:
    launch = smart_ehr.new_launch("Patient/p-1")
    started = smart_client.get(f"/smart/launch?iss={smart_ehr.iss}&launch={launch}")
    assert started.status_code == 302
    url = urlsplit(started.headers["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{smart_ehr.base}/authorize"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["aud"] == smart_ehr.iss and query["launch"] == launch and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == f"{PUBLIC}/smart/callback"
    scopes = query["scope"].split()
    assert "launch" in scopes and "patient/Observation.rs" in scopes and "patient/MedicationRequest.rs" in scopes
    assert all(s in ("launch", "launch/patient") or s.endswith(".rs") for s in scopes)
    assert set(query) == {"response_type", "client_id", "redirect_uri", "scope", "state", "aud", "launch",
                          "code_challenge", "code_challenge_method"}


def test_the_callback_trades_the_code_with_its_verifier_and_opens_a_session(smart_client, smart_ehr) -> None:
    page = open_session(smart_client, smart_ehr)
    form = smart_ehr.token_forms[-1]
    assert form["grant_type"] == "authorization_code" and form["client_id"] == CLIENT_ID and form["code_verifier"]
    shown = smart_client.get(page)
    assert shown.status_code == 200
    assert "No headache diary yet" in shown.get_data(as_text=True)  # the test EHR holds nothing behind its proxy
    assert smart_ehr.fhir_requests  # read with the clinician's token (the proxy refuses any other)


def test_a_standalone_launch_uses_the_first_trusted_ehr(smart_client, smart_ehr) -> None:
    query = parse_qs(authorize(smart_client, ""))
    assert "launch" not in smart_ehr.authorize_requests[-1]
    assert "launch/patient" in smart_ehr.authorize_requests[-1]["scope"].split()
    answer = smart_client.get(f"/smart/callback?code={query['code'][0]}&state={query['state'][0]}")
    assert answer.status_code == 200 and "Opening the diary" in answer.get_data(as_text=True)


@pytest.mark.parametrize(("query", "status", "words"), [
    pytest.param("?iss=https://other-ehr.example.org/fhir&launch=x", 400, "$.iss", id="untrusted-iss"),
    pytest.param("?launch=abc", 400, "$.iss", id="launch-without-iss"),
    pytest.param("?iss={iss}&launch=", 400, "$.launch", id="empty-launch"),
])
def test_a_bad_launch_is_a_clear_page(smart_client, smart_ehr, query: str, status: int, words: str) -> None:
    answer = smart_client.get("/smart/launch" + query.format(iss=smart_ehr.iss))
    assert answer.status_code == status
    text = answer.get_data(as_text=True)
    assert answer.mimetype == "text/html" and words in text and "Traceback" not in text
    assert 'data-state="error"' in text


@pytest.mark.parametrize(("query", "words"), [
    pytest.param("code=abc", "$.state", id="no-state"),
    pytest.param("code=abc&state=not-a-state-of-ours", "$.state", id="unknown-state"),
])
def test_a_callback_with_a_missing_or_wrong_state_is_refused(smart_client, query: str, words: str) -> None:
    answer = smart_client.get(f"/smart/callback?{query}")
    assert answer.status_code == 400
    assert words in answer.get_data(as_text=True) and "launch the app again" in answer.get_data(as_text=True).lower()


def test_a_state_works_once(smart_client, smart_ehr) -> None:
    launch = smart_ehr.new_launch("Patient/p-1")
    query = authorize(smart_client, f"?iss={smart_ehr.iss}&launch={launch}")
    assert smart_client.get(f"/smart/callback?{query}").status_code == 200
    again = smart_client.get(f"/smart/callback?{query}")
    assert again.status_code == 400 and "$.state" in again.get_data(as_text=True)


def test_a_callback_without_a_code_or_with_an_error_is_refused(smart_client, smart_ehr) -> None:
    launch = smart_ehr.new_launch("Patient/p-1")
    state = parse_qs(authorize(smart_client, f"?iss={smart_ehr.iss}&launch={launch}"))["state"][0]
    answer = smart_client.get(f"/smart/callback?state={state}&error=access_denied")
    assert answer.status_code == 400 and "access_denied" in answer.get_data(as_text=True)


def test_a_token_without_a_patient_is_refused(smart_client, smart_ehr) -> None:
    smart_ehr.omit_patient = True
    launch = smart_ehr.new_launch("Patient/p-1")
    answer = smart_client.get(f"/smart/callback?{authorize(smart_client, f'?iss={smart_ehr.iss}&launch={launch}')}")
    assert answer.status_code == 400
    assert "$.patient" in answer.get_data(as_text=True) and "carries no patient" in answer.get_data(as_text=True)


def test_a_code_the_ehr_refuses_is_an_error_page(smart_client, smart_ehr) -> None:
    launch = smart_ehr.new_launch("Patient/p-1")
    state = parse_qs(authorize(smart_client, f"?iss={smart_ehr.iss}&launch={launch}"))["state"][0]
    answer = smart_client.get(f"/smart/callback?state={state}&code=forged")
    assert answer.status_code == 502
    assert "refused the authorization code" in answer.get_data(as_text=True)


def test_a_month_in_the_future_or_not_a_month_is_refused_before_the_ehr_is_asked(smart_client, smart_ehr) -> None:
    page = open_session(smart_client, smart_ehr)
    asked = len(smart_ehr.fhir_requests)
    for month, words in (("2999-01", "has not begun yet"), ("2026-13", "$.month"), ("november", "$.month")):
        answer = smart_client.get(f"{page}{month}")
        assert answer.status_code == 422, month
        assert words in answer.get_data(as_text=True)
    assert len(smart_ehr.fhir_requests) == asked


def test_an_unknown_session_is_a_clear_page(smart_client) -> None:
    answer = smart_client.get("/smart/s/not-a-session/")
    assert answer.status_code == 400 and "launch the app again" in answer.get_data(as_text=True).lower()


def test_no_token_or_patient_is_logged_and_urls_carry_only_the_smart_parameters(smart_client, smart_ehr, caplog) -> None:
    caplog.set_level(logging.INFO)  # the service's level; urllib3's debug lines name every URL asked
    page = open_session(smart_client, smart_ehr, "Patient/secret-patient-77")
    smart_client.get(page)
    smart_client.get(f"{page}2999-01")
    token = next(iter(smart_ehr.tokens))
    # The service's records (werkzeug's are the test EHR's own request lines).
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records if r.name != "werkzeug")
    assert any(r.name.startswith("fhir_migraine") for r in caplog.records)
    assert token not in logged and "secret-patient-77" not in logged
    assert "secret-patient-77" not in page and token not in page
    for asked in smart_ehr.authorize_requests:
        assert "secret-patient-77" not in str(asked)


def test_the_app_pages_need_no_bearer_token_and_the_rest_still_do(smart_client) -> None:
    assert smart_client.get("/smart/s/none/").status_code == 400  # a page, not a 401
    assert smart_client.get("/protocols").status_code == 401
    assert smart_client.post("/smart/s/none/").status_code == 405  # GET only
    authorised = smart_client.get("/protocols", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert authorised.status_code == 200


def test_the_pages_forbid_scripts_and_referrers(smart_client) -> None:
    answer = smart_client.get("/smart/s/none/")
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "frame-ancestors 'self'" in policy
    assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_without_the_smart_settings_the_app_is_off(client) -> None:
    answer = client.get("/smart/launch")
    assert answer.status_code == 404 and "not configured" in answer.get_data(as_text=True)


@given(state=st.text(max_size=80), month=st.text(min_size=1, max_size=20).filter(lambda m: "/" not in m and m not in (".", "..")))
@hypothesis_settings(max_examples=examples(40), suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_state_or_month_is_a_page_never_a_server_error(smart_client, state: str, month: str) -> None:
    answer = smart_client.get("/smart/callback", query_string={"state": state, "code": "x"})
    assert answer.status_code == 400 and "Traceback" not in answer.get_data(as_text=True)
    shown = smart_client.get(f"/smart/s/no-session/{requests.utils.quote(month, safe='')}")
    assert 400 <= shown.status_code < 500, shown.get_data(as_text=True)


@given(iss=st.text(max_size=120))
@hypothesis_settings(max_examples=examples(40), suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_iss_but_the_trusted_one_is_refused_with_a_page(smart_client, iss: str) -> None:
    # The trusted iss is the test EHR's, on a port of the system's choosing: never drawn here.
    answer = smart_client.get("/smart/launch", query_string={"iss": iss, "launch": "L"})
    assert answer.status_code == 400 and "$.iss" in answer.get_data(as_text=True)


def test_a_token_naming_a_patient_that_is_not_an_id_is_refused(smart_client, smart_ehr) -> None:
    launch = smart_ehr.new_launch("Patient/not an id!")
    answer = smart_client.get(f"/smart/callback?{authorize(smart_client, f'?iss={smart_ehr.iss}&launch={launch}')}")
    assert answer.status_code == 400 and "$.patient" in answer.get_data(as_text=True)
