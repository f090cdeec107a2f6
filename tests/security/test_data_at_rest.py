"""Patient data at rest: a running service keeps its database folder and every file in it
private whatever the umask, and a purge leaves no trace of a sent Bundle's content in the
database or its WAL, while the item's delivery record stays."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.helpers import example_diary
from tests.integration.test_kill import Service

pytestmark = pytest.mark.ehr


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_served_database_is_private_and_a_purge_leaves_no_trace_of_the_bundle(tmp_path: Path, ehr_url: str, run_id: str) -> None:
    service = Service(tmp_path, ehr_url)
    folder = tmp_path / "var"
    service.env["FHIR_MIGRAINE_DB"] = str(folder / "service.sqlite3")
    secret = f"migraine note {run_id} only the patient wrote"
    before = os.umask(0o002)  # a permissive umask the service must not inherit into its files
    try:
        service.start()
    finally:
        os.umask(before)
    try:
        entry = dict(example_diary(run_id, f"Patient/rest-{run_id}")[0], notes=secret)
        answer = service.call("POST", "/diary", json=entry)
        assert answer.status_code == 202, answer.text
        item_id = answer.json()["outbox_id"]
        deadline = time.time() + 60
        while service.call("GET", f"/outbox/{item_id}").json()["state"] != "sent":
            assert time.time() < deadline, "the entry was not sent"
            time.sleep(0.3)
        assert _mode(folder) == 0o700
        for path in folder.rglob("*"):
            assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
        stored = b"".join(p.read_bytes() for p in folder.glob("service.sqlite3*") if p.is_file())
        assert secret.encode() in stored  # kept until the retention runs out

        purge = subprocess.run([sys.executable, "-m", "fhir_migraine.cli", "outbox", "purge", "--older-than", "0"],
                               env=service.env, capture_output=True, text=True, timeout=60)
        assert purge.returncode == 0, purge.stderr
        assert item_id in purge.stdout
        stored = b"".join(p.read_bytes() for p in folder.glob("service.sqlite3*") if p.is_file())
        assert secret.encode() not in stored
        summary = service.call("GET", f"/outbox/{item_id}").json()
        assert summary["state"] == "sent" and summary["resources"] == len(answer.json()["bundle"]["entry"])
    finally:
        service.stop()
