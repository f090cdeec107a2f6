"""The PHI-safe JSON logs: what a line holds, and that patient data never reaches one."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from fhir_migraine import logs

PATIENT = "Patient/mrn-4711"
IDENTIFIER = "urn:oid:1.2.3|MRN4711"
NOTE = "woke with aura after a night shift"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """The project's loggers writing to a buffer, restored afterwards."""
    names = ("fhir_migraine", "gunicorn.error", "gunicorn.access")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names}
    buffer = io.StringIO()
    logs.configure("DEBUG", buffer)
    yield buffer
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_time_level_logger_message_and_safe_fields(stream: io.StringIO) -> None:
    logging.getLogger("fhir_migraine.ehr.worker").info("outbox item sent", extra={"outbox_id": "abc", "attempt": 2, "parts": 3})
    (line,) = lines(stream)
    assert line["msg"] == "outbox item sent"
    assert (line["level"], line["logger"]) == ("info", "fhir_migraine.ehr.worker")
    assert (line["outbox_id"], line["attempt"], line["parts"]) == ("abc", 2, 3)
    assert line["ts"].endswith("Z") and len(line["ts"]) == len("2026-12-01T08:00:00.000Z")


def test_extra_fields_outside_the_safe_list_are_dropped(stream: io.StringIO) -> None:
    logging.getLogger("fhir_migraine.api").info(
        "request", extra={"route": "/patients/<path:patient>/diary", "patient": PATIENT, "identifier": IDENTIFIER,
                          "notes": NOTE, "url": f"/patients/{PATIENT}/diary"},
    )
    text = stream.getvalue()
    assert json.loads(text)["route"] == "/patients/<path:patient>/diary"
    for secret in (PATIENT, "MRN4711", NOTE):
        assert secret not in text


def test_the_projects_messages_are_never_formatted_with_their_arguments(stream: io.StringIO) -> None:
    logging.getLogger("fhir_migraine.ehr").warning("pull failed for %s: %s", PATIENT, NOTE)
    (line,) = lines(stream)
    assert line["msg"] == "pull failed for %s: %s"
    assert PATIENT not in stream.getvalue() and NOTE not in stream.getvalue()


def test_a_message_that_is_not_text_is_replaced(stream: io.StringIO) -> None:
    logging.getLogger("fhir_migraine").error({"patient": PATIENT})
    assert lines(stream)[0]["msg"] == "log record"
    assert PATIENT not in stream.getvalue()


def test_gunicorns_own_messages_keep_their_arguments(stream: io.StringIO) -> None:
    logging.getLogger("gunicorn.error").info("Booting worker with pid: %s", 4242)
    assert lines(stream)[0]["msg"] == "Booting worker with pid: 4242"


def test_an_exception_logs_its_type_only(stream: io.StringIO) -> None:
    try:
        raise ValueError(f"bad identifier {IDENTIFIER}")
    except ValueError as exc:
        logging.getLogger("fhir_migraine.ehr.worker").error("outbox worker error", extra={"error": type(exc).__name__}, exc_info=True)
    (line,) = lines(stream)
    assert line["error"] == "ValueError"
    assert "MRN4711" not in stream.getvalue()


def test_configure_replaces_handlers_instead_of_adding_them(stream: io.StringIO) -> None:
    again = io.StringIO()
    logs.configure("INFO", again)
    logging.getLogger("fhir_migraine").info("once")
    assert stream.getvalue() == "" and len(again.getvalue().splitlines()) == 1


@pytest.mark.parametrize(
    ("message", "args"),
    [("Invalid request from ip=127.0.0.1: Invalid HTTP request line: 'GET /patients/mrn-4711/diary'", ()),
     ("Error handling request %s", ("/patients/mrn-4711/diary?since=2026-11-01",)),
     ("Ignored premature client disconnection. %s", (ValueError("mrn-4711"),))],
    ids=["preformatted", "uri-argument", "unknown-template"],
)
def test_gunicorn_messages_that_may_carry_request_data_lose_it(stream: io.StringIO, message: str,
                                                                args: tuple[Any, ...]) -> None:
    logging.getLogger("gunicorn.error").warning(message, *args)
    (line,) = lines(stream)
    assert "4711" not in stream.getvalue()
    assert line["msg"] in (logs.WITHHELD, message)


def test_a_gunicorn_error_keeps_its_template_and_its_exception_type(stream: io.StringIO) -> None:
    try:
        raise KeyError(PATIENT)
    except KeyError:
        logging.getLogger("gunicorn.error").exception("Error handling request %s", f"/patients/{PATIENT}/diary")
    (line,) = lines(stream)
    assert (line["msg"], line["error_type"]) == ("Error handling request %s", "KeyError")
    assert "4711" not in stream.getvalue()


def test_a_gunicorn_access_line_keeps_method_status_and_duration_only(stream: io.StringIO) -> None:
    atoms = {"r": f"GET /patients/{PATIENT}/diary HTTP/1.1", "U": f"/patients/{PATIENT}/diary", "q": "since=x",
             "m": "GET", "s": "200", "D": 1500, "{authorization}i": "Bearer secret"}
    logging.getLogger("gunicorn.access").info("%(r)s %(s)s", atoms)
    (line,) = lines(stream)
    assert (line["msg"], line["method"], line["status"], line["duration_ms"]) == ("access", "GET", 200, 1.5)
    assert "4711" not in stream.getvalue() and "secret" not in stream.getvalue()
