"""Structured JSON logs that carry no PHI.

Messages are constant strings; of a record's extra fields only those named in ``SAFE_FIELDS``
are written (ids the project made, states, counts, durations, route templates), so a patient
reference, name, identifier, date or note cannot reach a log line even by mistake. gunicorn's own
records pass ``GunicornFilter`` first, which drops the request data gunicorn formats into them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

SAFE_FIELDS = frozenset(
    {
        "outbox_id", "attempt", "delay_s", "error", "error_type", "status", "parts", "resources", "state",
        "method", "route", "duration_ms", "entries", "pages", "kind", "count", "worker",
        "protocol_id", "version", "content_hash", "previous_hash", "import_id", "lines", "invalid",
        "retry_after_capped", "failed_entries", "prefetch_missing", "bulk_pull_id",
    }
)


#: gunicorn's messages whose arguments are pids, signals, addresses, versions or exit codes: the
#: only ones printed with their arguments.
GUNICORN_TEMPLATES = frozenset(
    {
        "Starting gunicorn %s", "Listening at: %s (%s)", "Listening at: %s", "Using worker: %s",
        "Booting worker with pid: %s", "Worker exiting (pid: %s)", "Handling signal: %s", "Hang up: %s",
        "WORKER TIMEOUT (pid:%s)", "Worker (pid:%s) exited with code %s", "Worker (pid:%s) exited with code %s.",
        "Shutting down: %s", "Ignoring unknown signal: %s", "Unhandled signal: %s", "Reason: %s",
    }
)
#: gunicorn's constant messages (no arguments, nothing formatted into them beforehand).
GUNICORN_CONSTANTS = frozenset(
    {
        "Arbiter booted", "graceful stop of workers", "Master has been promoted.", "Error handling request",
        "Error handling request (no URI read)", "Socket error processing request.", "Closing connection.",
        "Autorestarting worker after current request.", "Exception in worker process", "Exception in post_request hook",
        "Unhandled exception in main loop", "Failed to send error message.", "Ignoring connection reset",
        "Ignoring socket not connected", "Ignoring connection epipe", "ssl connection closed",
        "Error processing SSL request.", "worker: SIGWINCH ignored.", "SIGWINCH ignored. Not daemonized",
    }
)
# Messages gunicorn formats itself before logging, with nothing of a request in them.
_GUNICORN_PREFORMATTED = re.compile(r"^(\d+ workers|Worker \(pid:\d+\) was sent [A-Z0-9 ]+!( Perhaps out of memory\?)?)$")
WITHHELD = "gunicorn message withheld (it may carry request data)"


class GunicornFilter(logging.Filter):
    """Makes gunicorn's error and access records safe before they are formatted.

    gunicorn formats request lines, paths, query strings and header values into its messages
    (an invalid request, an error while handling one, the access line), and any of them can name
    a patient. Only the messages known to carry nothing of a request keep their text; any other
    keeps its constant template, or is withheld. An access record keeps its method, status and
    duration only (the project's own ``request`` line gives the route template)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("gunicorn."):
            return True
        if record.name == "gunicorn.access":
            atoms = record.args if isinstance(record.args, Mapping) else {}
            record.method, record.status = atoms.get("m"), _int(atoms.get("s"))
            micros = _int(atoms.get("D"))
            record.duration_ms = round(micros / 1000, 1) if micros is not None else None
            record.msg, record.args = "access", ()
            return True
        template = record.msg if isinstance(record.msg, str) else ""
        if record.args and template in GUNICORN_TEMPLATES:
            record.msg, record.args = record.getMessage(), ()
        elif record.args:
            record.args = ()  # the template is gunicorn's code; its arguments may be request data
        elif template not in GUNICORN_CONSTANTS and not _GUNICORN_PREFORMATTED.match(template):
            record.msg = WITHHELD
        return True


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the safe extra fields; of an
    exception, its type only (its text and traceback may carry patient data)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            # Messages are constants (gunicorn's made so by GunicornFilter); arguments are never printed.
            "msg": record.msg if isinstance(record.msg, str) else "log record",
        }
        for key in SAFE_FIELDS:
            if key in record.__dict__:
                line[key] = record.__dict__[key]
        if record.exc_info and record.exc_info[0] is not None and "error_type" not in line:
            line["error_type"] = record.exc_info[0].__name__
        return json.dumps(line, default=str)


def configure(level: str = "INFO", stream: object = None) -> None:
    """Send the project's and gunicorn's logs to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter())
    handler.addFilter(GunicornFilter())
    for name in ("fhir_migraine", "gunicorn.error", "gunicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
