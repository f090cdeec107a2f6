"""Switching the local test EHR's modes (tests/ehr/README.md, "Modes") from tests: read and set
them through ``/admin/modes`` next to the FHIR base, and register a patient however strict the
modes are (``X-Test-Admin: 1`` bypasses them for that one request)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

#: The request header that bypasses every mode for that request.
BYPASS = {"X-Test-Admin": "1"}
TIMEOUT = 30


def admin_url(base_url: str) -> str:
    """``http://localhost:8091/fhir`` → ``http://localhost:8091/admin/modes``."""
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path.rsplit("/", 1)[0] if parts.path.endswith("/fhir") else ""
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/admin/modes", "", ""))


def current_modes(base_url: str) -> dict[str, Any]:
    """``{"modes": [...], "throttle_every": N}`` as the server has them now."""
    answer = requests.get(admin_url(base_url), timeout=TIMEOUT)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


def set_modes(base_url: str, modes: Iterable[str], throttle_every: int | None = None) -> dict[str, Any]:
    """Switch to exactly ``modes`` (``throttle_every`` None keeps the server's value); returns the
    new state. An unknown mode raises ``requests.HTTPError`` (the server answers 400 naming it)."""
    body: dict[str, Any] = {"modes": list(modes)}
    if throttle_every is not None:
        body["throttle_every"] = throttle_every
    answer = requests.put(admin_url(base_url), json=body, timeout=TIMEOUT)
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


@contextmanager
def modes(base_url: str, *names: str, throttle_every: int | None = None) -> Iterator[dict[str, Any]]:
    """Run a block with exactly these modes on, then put back the ones that were on before."""
    before = current_modes(base_url)
    try:
        yield set_modes(base_url, names, throttle_every)
    finally:
        set_modes(base_url, before["modes"], before["throttle_every"])


def register_patient(base_url: str, identifier_system: str, value: str) -> str:
    """Create a Patient with this identifier whatever the modes (``X-Test-Admin``); returns
    ``"Patient/<id>"``."""
    patient = {"resourceType": "Patient", "identifier": [{"system": identifier_system, "value": value}]}
    answer = requests.post(f"{base_url.rstrip('/')}/Patient", json=patient, timeout=TIMEOUT,
                           headers={**BYPASS, "Content-Type": "application/fhir+json",
                                    "Prefer": "return=representation"})
    answer.raise_for_status()
    return f"Patient/{answer.json()['id']}"
