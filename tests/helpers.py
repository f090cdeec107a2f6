"""Helpers the tests share: running the CLI in-process and reading its output."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from fhir_migraine.cli import main


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())
