"""The FHIR client's side of Bulk Data: the kick-off's headers and 202, the status URL's answers,
files streamed with or without credentials, and no credentials ever sent off the EHR's origin."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import requests

from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.errors import EhrRejected, EhrUnavailable, EhrUnsupported

BASE = "https://ehr.example/fhir"
STATUS = f"{BASE}/$export-poll-status?_jobId=9"


class Token:
    def headers(self, session: requests.Session) -> dict[str, str]:
        return {"Authorization": "Bearer secret-token"}

    def invalidate(self) -> None:
        return None


def answer(status: int, body: bytes | dict[str, Any] = b"", **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if isinstance(body, dict) else body
    response.headers.update(headers)
    response.raw = io.BytesIO(response._content)
    return response


class Script(requests.Session):
    """Answers each request with the next scripted answer and records what was sent."""

    def __init__(self, *answers: requests.Response) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[tuple[str, str, dict[str, str], dict[str, str] | None]] = []

    def request(self, method: str | bytes, url: str | bytes, params: Any = None, headers: Any = None,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        self.sent.append((str(method), str(url), dict(headers or {}), params))
        return self.answers.pop(0)


def client(*answers: requests.Response) -> tuple[FhirClient, Script]:
    session = Script(*answers)
    return FhirClient(BASE, auth=Token(), session=session), session


def test_the_kick_off_asks_for_an_asynchronous_answer_and_gives_the_status_url() -> None:
    ehr, session = client(answer(202, **{"Content-Location": STATUS}))
    assert ehr.kick_off("Group/7/$export", {"_type": "Observation"}) == STATUS
    method, url, headers, params = session.sent[0]
    assert (method, url, params) == ("GET", f"{BASE}/Group/7/$export", {"_type": "Observation"})
    assert headers["Prefer"] == "respond-async" and headers["Accept"] == "application/fhir+json"


@pytest.mark.parametrize(("reply", "error"), [
    (answer(200, {"resourceType": "Bundle"}), EhrUnsupported),
    (answer(202), EhrUnavailable),
    (answer(202, **{"Content-Location": "https://elsewhere.example/status/1"}), EhrRejected),
    (answer(405), EhrUnsupported),
])
def test_a_kick_off_not_answered_as_bulk_data_says_is_an_error(reply: requests.Response, error: type) -> None:
    ehr, _ = client(reply)
    with pytest.raises(error):
        ehr.kick_off("Group/7/$export", {})


def test_the_status_url_answers_in_progress_then_the_manifest() -> None:
    manifest = {"transactionTime": "2026-11-30T10:00:00Z", "output": []}
    ehr, _ = client(answer(202, **{"Retry-After": "5", "X-Progress": "50%"}), answer(200, manifest))
    first = ehr.export_status(STATUS)
    assert (first.manifest, first.retry_after, first.progress) == (None, 5.0, "50%")
    assert ehr.export_status(STATUS).manifest == manifest


def test_a_busy_status_url_is_unavailable_with_its_retry_after() -> None:
    ehr, _ = client(answer(429, **{"Retry-After": "9"}))
    with pytest.raises(EhrUnavailable) as raised:
        ehr.export_status(STATUS)
    assert (raised.value.status, raised.value.retry_after) == (429, 9.0)


def test_a_status_url_or_file_off_the_ehrs_origin_is_never_sent_the_token() -> None:
    ehr, session = client()
    with pytest.raises(EhrRejected, match="credentials are not sent"):
        ehr.export_status("https://elsewhere.example/status")
    with pytest.raises(EhrRejected, match="credentials are not sent"):
        ehr.download("https://elsewhere.example/file.ndjson", io.BytesIO(), authorized=True, limit=100)
    for url in ("file:///etc/passwd", "http://files.example/1.ndjson"):  # PHI only over TLS from a TLS EHR
        with pytest.raises(EhrRejected, match="not an https URL"):
            ehr.download(url, io.BytesIO(), authorized=False, limit=100)
    assert session.sent == []


def test_a_file_is_streamed_with_the_token_when_the_manifest_asks_for_it_and_without_otherwise() -> None:
    body = b'{"resourceType":"Observation","id":"1"}\n' * 100
    ehr, session = client(answer(200, body), answer(200, body))
    out = io.BytesIO()
    assert ehr.download(f"{BASE}/Binary/1", out, authorized=True, limit=len(body)) == len(body)
    assert out.getvalue() == body
    assert session.sent[0][2]["Authorization"] == "Bearer secret-token"
    assert session.sent[0][2]["Accept"] == "application/fhir+ndjson"
    ehr.download("https://files.example/1.ndjson", io.BytesIO(), authorized=False, limit=len(body))
    assert "Authorization" not in session.sent[1][2]


def test_a_file_over_the_limit_is_refused() -> None:
    ehr, _ = client(answer(200, b"x" * 1000))
    with pytest.raises(EhrRejected, match="FHIR_MIGRAINE_BULK_MAX_FILE_BYTES"):
        ehr.download(f"{BASE}/Binary/1", io.BytesIO(), authorized=True, limit=999)


def test_a_file_the_ehr_refuses_is_its_error() -> None:
    ehr, _ = client(answer(503, **{"Retry-After": "3"}))
    with pytest.raises(EhrUnavailable):
        ehr.download(f"{BASE}/Binary/1", io.BytesIO(), authorized=True, limit=100)


def test_a_relative_status_url_is_read_against_the_base() -> None:
    ehr, _ = client(answer(202, **{"Content-Location": "$export-poll-status?_jobId=9"}))
    assert ehr.kick_off("Group/7/$export", {}) == STATUS


def test_a_redirected_file_is_followed_under_the_rules_of_its_target() -> None:
    body = b'{"resourceType":"Observation","id":"1"}\n'
    ehr, session = client(answer(302, Location="/fhir/Binary/2"), answer(200, body))
    out = io.BytesIO()
    assert ehr.download(f"{BASE}/Binary/1", out, authorized=True, limit=100) == len(body)
    assert [s[1] for s in session.sent] == [f"{BASE}/Binary/1", f"{BASE}/Binary/2"]
    assert session.sent[1][2]["Authorization"] == "Bearer secret-token"
    # Off the EHR's origin with the credentials, or to plain http without them: refused, nothing sent there.
    ehr, session = client(answer(302, Location="https://elsewhere.example/f"))
    with pytest.raises(EhrRejected, match="credentials are not sent"):
        ehr.download(f"{BASE}/Binary/1", io.BytesIO(), authorized=True, limit=100)
    ehr, session = client(answer(302, Location="http://files.example/f"))
    with pytest.raises(EhrRejected, match="not an https URL"):
        ehr.download("https://files.example/f", io.BytesIO(), authorized=False, limit=100)
    assert len(session.sent) == 1
    ehr, _ = client(*(answer(302, Location=f"{BASE}/Binary/{n}") for n in range(5)))
    with pytest.raises(EhrRejected, match="redirected more than 3 times"):
        ehr.download(f"{BASE}/Binary/x", io.BytesIO(), authorized=True, limit=100)
