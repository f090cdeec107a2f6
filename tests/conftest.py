"""Shared fixtures: paths of the examples, the Flask app and its test client."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

import fhir_migraine
from fhir_migraine.api import create_app
from fhir_migraine.config import ApiAuthSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PROTOCOLS = EXAMPLES / "protocols"

# scripts/check-wheel runs the tests with the Python of a fresh environment where the built
# wheel is installed: then the package under test must be that one, and tests/installed runs.
INSTALLED = os.environ.get("FHIR_MIGRAINE_TEST_INSTALLED") == "1"
if INSTALLED and ROOT in Path(fhir_migraine.__file__).resolve().parents:
    raise RuntimeError(f"FHIR_MIGRAINE_TEST_INSTALLED=1 but fhir_migraine comes from the checkout: {fhir_migraine.__file__}")
collect_ignore = [] if INSTALLED else ["installed"]

# Hypothesis: in CI the property tests draw the same examples on every run (derandomised), so a
# red build is reproducible; on a workstation they draw new ones each run; "long" draws ten
# times as many (HYPOTHESIS_PROFILE=long scripts/test tests/property).
LONG_FACTOR = 10
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.register_profile("long", deadline=None)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
hypothesis_settings.load_profile(PROFILE)


def examples(count: int) -> int:
    """How many examples a property test draws: ``count``, or ten times as many in the long profile."""
    return count * LONG_FACTOR if PROFILE == "long" else count


API_TOKEN = "test-token-for-the-service"
PROTOCOLS_TOKEN = "test-token-of-the-protocol-authors"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    api = ApiAuthSettings(token=API_TOKEN, protocols_token=PROTOCOLS_TOKEN)
    return Settings(database=str(tmp_path / "service.sqlite3"), seed_protocols=str(PROTOCOLS), api=api)


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


@pytest.fixture
def author(app):
    """A client holding the protocol authors' token (the only static one that may change protocols)."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {PROTOCOLS_TOKEN}"
    return client
