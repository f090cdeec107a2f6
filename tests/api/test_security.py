"""Every endpoint but /health and /ready needs a bearer token with the right scope."""

from __future__ import annotations

import pytest

from fhir_migraine.api import create_app
from fhir_migraine.errors import ConfigError

PROTECTED = [
    ("get", "/protocols"),
    ("get", "/protocols/dhe-repeat"),
    ("put", "/protocols/dhe-repeat"),
    ("post", "/orders"),
    ("post", "/diary"),
    ("get", "/openapi.json"),
    ("get", "/metrics"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_token_is_a_401_problem_with_a_challenge(app, method: str, path: str) -> None:
    answer = getattr(app.test_client(), method)(path)
    assert answer.status_code == 401
    assert answer.mimetype == "application/problem+json"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_wrong_token_is_a_401(app, method: str, path: str) -> None:
    answer = getattr(app.test_client(), method)(path, headers={"Authorization": "Bearer not-the-token"})
    assert answer.status_code == 401


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_health_and_ready_need_no_token(app, path: str) -> None:
    assert app.test_client().get(path).status_code == 200


def test_the_service_refuses_to_start_without_any_caller_credentials(settings) -> None:
    from dataclasses import replace

    with pytest.raises(ConfigError, match="FHIR_MIGRAINE_API_TOKEN"):
        create_app(replace(settings, api=replace(settings.api, token=None)))
