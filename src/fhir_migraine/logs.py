"""Structured JSON logs that carry no PHI.

Messages are constant strings; of a record's extra fields only those named in ``SAFE_FIELDS``
are written (ids the project made, states, counts, durations, route templates), so a patient
reference, name, identifier, date or note cannot reach a log line even by mistake.
"""

from __future__ import annotations

import json
import logging
import sys
import time

SAFE_FIELDS = frozenset(
    {
        "outbox_id", "attempt", "delay_s", "error", "error_type", "status", "parts", "resources", "state",
        "method", "route", "duration_ms", "entries", "pages", "kind", "count", "worker",
        "protocol_id", "version", "content_hash", "previous_hash", "import_id", "lines", "invalid",
        "retry_after_capped",
    }
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the safe extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self._message(record),
        }
        for key in SAFE_FIELDS:
            if key in record.__dict__:
                line[key] = record.__dict__[key]
        return json.dumps(line, default=str)


    @staticmethod
    def _message(record: logging.LogRecord) -> str:
        # Only gunicorn's own messages (pids, addresses, signals) are rendered with their
        # arguments; the project's messages are constants and their arguments never printed.
        if record.name.startswith("gunicorn.") and record.args:
            return record.getMessage()
        return record.msg if isinstance(record.msg, str) else "log record"


def configure(level: str = "INFO", stream: object = None) -> None:
    """Send the project's and gunicorn's logs to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter())
    for name in ("fhir_migraine", "gunicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
