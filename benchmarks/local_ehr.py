"""The EHR the benchmarks use: FHIR_MIGRAINE_TEST_EHR_URL, or the local test server of scripts/ehr."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def ehr_url() -> str:
    """Its base URL; exits with a message when it does not answer."""
    url = os.environ.get("FHIR_MIGRAINE_TEST_EHR_URL") or subprocess.run(
        [str(ROOT / "scripts" / "ehr"), "url"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        requests.get(f"{url}/metadata", timeout=10).raise_for_status()
    except requests.RequestException as exc:
        raise SystemExit(f"no EHR at {url} ({exc}); run scripts/ehr start") from None
    return url
