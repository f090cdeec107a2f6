"""The package type-checks (mypy on src/)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_package_type_checks() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "src"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
