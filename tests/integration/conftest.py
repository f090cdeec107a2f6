"""A real HAPI FHIR server for the integration tests: the one at FHIR_MIGRAINE_TEST_EHR_URL, or
the project's local test EHR started once per test run by ``scripts/ehr``. In CI (CI=true) a
server that cannot start fails the run; elsewhere the integration tests are skipped, saying why."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_migraine.ehr.client import FhirClient
from tests.conftest import ROOT
from tests.ehr_modes import admin_url, current_modes, set_modes

SCRIPT = ROOT / "scripts" / "ehr"


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/metadata", timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def ehr_url() -> Iterator[str]:
    url = os.environ.get("FHIR_MIGRAINE_TEST_EHR_URL")
    if url:
        if not _answers(url):
            pytest.fail(f"FHIR_MIGRAINE_TEST_EHR_URL={url} does not answer /metadata")
        yield url.rstrip("/")
        return
    url = subprocess.run([str(SCRIPT), "url"], capture_output=True, text=True, check=True).stdout.strip()
    started_here = not _answers(url)
    if started_here:
        result = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True)
        if result.returncode != 0:
            message = f"the local HAPI FHIR test server did not start:\n{result.stdout}\n{result.stderr}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(message, pytrace=False)
            pytest.skip("no EHR for the integration tests: " + message.splitlines()[0])
    yield url
    if started_here and not os.environ.get("FHIR_MIGRAINE_KEEP_EHR"):
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, text=True)


@pytest.fixture
def ehr(ehr_url: str) -> FhirClient:
    return FhirClient(ehr_url, timeout=60)


@pytest.fixture
def ehr_modes(ehr_url: str) -> Iterator[Callable[..., dict[str, Any]]]:
    """A setter of the test EHR's modes (``ehr_modes("strict", "throttle", throttle_every=3)``);
    the test starts with no modes on and, whatever it does, the EHR has none on afterwards (and
    its throttle period back).
    Needs the project's test EHR: another server has no ``/admin/modes``."""
    try:
        before = current_modes(ehr_url)
    except requests.RequestException as error:
        message = f"the EHR at {ehr_url} has no usable {admin_url(ehr_url)}: {error}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)

    def switch(*names: str, throttle_every: int | None = None) -> dict[str, Any]:
        return set_modes(ehr_url, names, throttle_every)

    try:
        set_modes(ehr_url, [])  # the test starts from HAPI's own behaviour too
        yield switch
    finally:
        set_modes(ehr_url, [], before["throttle_every"])


@pytest.fixture
def run_id() -> str:
    """A suffix that keeps this test's ids apart from every other test's on the shared server."""
    return uuid.uuid4().hex[:8]


def count_by_identifier(ehr: FhirClient, resource_type: str, system: str, value: str) -> int:
    params = {"identifier": f"{system}|{value}", "_summary": "count"}
    page = next(ehr.search(resource_type, params))
    return int(page.get("total", 0))


def tmp_database(tmp_path: Path) -> str:
    return str(tmp_path / "service.sqlite3")
