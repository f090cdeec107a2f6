"""Every answer, from the app or from gunicorn itself, carries Cache-Control: no-store and
X-Content-Type-Options: nosniff, names no gunicorn in a Server header, and every error is
problem+json (OperationOutcome under /fhir)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from tests.faultproxy import FaultProxy
from tests.integration.test_kill import Service
from tests.security.edge import TOKEN, exchange, running_service

pytestmark = pytest.mark.ehr
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, ehr_url: str) -> Iterator[tuple[Service, FaultProxy]]:
    with running_service(tmp_path_factory.mktemp("headers"), ehr_url) as running:
        yield running


def assert_safe_headers(headers: dict[str, str]) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered.get("cache-control") == "no-store", headers
    assert lowered.get("x-content-type-options") == "nosniff", headers
    assert "gunicorn" not in lowered.get("server", "").lower(), headers


ANSWERS = {
    "health 200": ("GET", "/health", {}, 200),
    "ready 200": ("GET", "/ready", {}, 200),
    "protocols 200": ("GET", "/protocols", AUTH, 200),
    "metadata 200": ("GET", "/fhir/metadata", {}, 200),
    "no token 401": ("GET", "/protocols", {}, 401),
    "unknown 404": ("GET", "/no-such-endpoint", AUTH, 404),
    "fhir unknown 404": ("GET", "/fhir/StructureDefinition/none", AUTH, 404),
    "wrong method 405": ("DELETE", "/orders", AUTH, 405),
    "text/plain 415": ("POST", "/orders", {**AUTH, "Content-Type": "text/plain"}, 415),
    "invalid order 422": ("POST", "/orders", {**AUTH, "Content-Type": "application/json"}, 422),
}


@pytest.mark.parametrize("name", ANSWERS)
def test_the_apps_answers_carry_the_headers_and_errors_are_problems(edge: tuple[Service, FaultProxy], name: str) -> None:
    service, _ = edge
    method, path, headers, status = ANSWERS[name]
    data = b'{"order_id": 1}' if method == "POST" else None
    answer = requests.request(method, f"{service.url}{path}", headers=headers, data=data, timeout=30)
    assert answer.status_code == status
    assert_safe_headers(dict(answer.headers))
    if status >= 400:
        expected = "application/fhir+json" if path.startswith("/fhir/") else "application/problem+json"
        assert answer.headers["Content-Type"] == expected


REFUSED = {
    "bad request line": (b"GARBAGE\r\n\r\n", 400),
    "bad method": (b"G@T /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "bad version": (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    "invalid header": (b"GET /health HTTP/1.1\r\nHost x\r\n\r\n", 400),
    "header too large": (b"GET /health HTTP/1.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n", 431),
    "request line too long": (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n", 414),
}


@pytest.mark.parametrize("name", REFUSED)
def test_gunicorns_own_refusals_are_problems_with_the_headers(edge: tuple[Service, FaultProxy], name: str) -> None:
    service, _ = edge
    request, status = REFUSED[name]
    answer = exchange(service.port, request)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), lines[0]
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert_safe_headers(headers)
    assert headers["Content-Type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status and problem["detail"]
