"""The core does no I/O: inputs, terminology, mapping never import flask, requests, the EHR
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
    "fhir_migraine.mapping.unmap_orders",
    "fhir_migraine.mapping.plandefinition",
    "fhir_migraine.operations",
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
