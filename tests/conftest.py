"""Shared fixtures: paths of the examples, the Flask app and its test client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

import fhir_migraine
from fhir_migraine.api import create_app
from fhir_migraine.config import ApiAuthSettings, Settings
from fhir_migraine.postgres import close_pools
from tests.postgres import Cluster

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


# --- the stores: SQLite (embedded default) and PostgreSQL (a throwaway cluster of the test run) ---

@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of this test run, started on first use and removed at the end; without
    PostgreSQL's binaries a skip, or a failure in CI (CI=true), where it must run."""
    try:
        cluster = Cluster(durable=False).start()
    except (FileNotFoundError, RuntimeError) as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL could not start: {error}", pytrace=False)
        pytest.skip(f"no PostgreSQL for the store tests: {error}")
    yield cluster
    close_pools()
    cluster.stop()


@pytest.fixture
def postgres_database(postgres_cluster: Cluster) -> Iterator[str]:
    """The URL of a new, empty database of the test run's cluster, dropped after the test."""
    url = postgres_cluster.new_database()
    yield url
    close_pools()
    postgres_cluster.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The service's database on each store: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "service.sqlite3")
    return str(request.getfixturevalue("postgres_database"))
