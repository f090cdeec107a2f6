"""Shared fixtures: paths of the examples, the Flask app and its test client."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_migraine.api import create_app
from fhir_migraine.config import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PROTOCOLS = EXAMPLES / "protocols"


API_TOKEN = "test-token-for-the-service"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database=str(tmp_path / "service.sqlite3"), seed_protocols=str(PROTOCOLS), api_token=API_TOKEN)


@pytest.fixture
def app(settings: Settings):
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    return client
