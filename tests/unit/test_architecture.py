"""The core does no I/O: inputs, terminology, mapping, the clinical rules never import flask, requests, the EHR
client or the API."""

from __future__ import annotations

import subprocess
import sys

PURE = [
    "fhir_migraine.inputs.protocols",
    "fhir_migraine.inputs.orders",
    "fhir_migraine.inputs.quantity",
    "fhir_migraine.terminology",
    "fhir_migraine.mapping.orders",
    "fhir_migraine.mapping.dosage",
    "fhir_migraine.mapping.request_group",
    "fhir_migraine.mapping.protocol_refs",
    "fhir_migraine.mapping.unmap_orders",
    "fhir_migraine.mapping.plandefinition",
    "fhir_migraine.operations",
    "fhir_migraine.clinical.ichd3",
    "fhir_migraine.clinical.overuse",
    "fhir_migraine.clinical.menstrual",
    "fhir_migraine.clinical.scores",
]
BLOCKED = ["flask", "requests", "werkzeug", "gunicorn", "sqlite3", "fhir_migraine.api", "fhir_migraine.ehr"]


def test_pure_modules_import_without_io_packages() -> None:
    program = (
        "import sys\n"
        f"for name in {BLOCKED!r}: sys.modules[name] = None\n"
        f"for name in {PURE!r}: __import__(name)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


CLI_BLOCKED = ["flask", "werkzeug", "gunicorn", "fhir_migraine.api"]


def test_the_cli_pushes_and_pulls_without_the_web_layer(tmp_path) -> None:
    """``push`` and ``pull`` build their EHR client through ``ehr.gateway``; with flask, gunicorn and
    the API blocked they still run (here against an address that refuses connections: exit 3)."""
    from tests.conftest import EXAMPLES

    bundle = EXAMPLES / "bundles" / "ed-migraine-rescue.bundle.json"
    ehr = "http://127.0.0.1:9/fhir"  # the discard port: nothing listens
    program = (
        "import sys\n"
        f"for name in {CLI_BLOCKED!r}: sys.modules[name] = None\n"
        "from fhir_migraine.cli import main\n"
        f"push = main(['push', {str(bundle)!r}, '--ehr', {ehr!r}, '--wait', '0'])\n"
        f"pull = main(['pull', '--patient', 'Patient/1', '--ehr', {ehr!r}])\n"
        f"loaded = sorted(n for n in {CLI_BLOCKED!r} if sys.modules.get(n) is not None)\n"
        "print(push, pull, loaded)\n"
    )
    env = {"FHIR_MIGRAINE_DB": str(tmp_path / "cli.sqlite3"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3 3 []", result.stderr
    assert "could not connect to the EHR" in result.stderr
