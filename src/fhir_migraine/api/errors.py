"""Errors as ``application/problem+json`` (RFC 9457) naming each field; never a traceback."""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from fhir_migraine.errors import EhrUnavailable, FhirMigraineError, Problem, TooLarge

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


def problem_document(status: int, title: str, detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The body of a problem+json answer (also what ``api.server`` writes for gunicorn's own errors)."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return body


def problem(status: int, title: str, detail: str, errors: list[dict[str, Any]] | None = None) -> Response:
    body = problem_document(status, title, detail, errors)
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON)


def operation_outcome(status: int, code: str, message: str, problems: list[dict[str, Any]] | None = None) -> Response:
    """An OperationOutcome (``application/fhir+json``): the FHIR endpoints' form of an error."""
    issues = [
        {"severity": "error", "code": code, "diagnostics": p["message"], "expression": [p["path"]]} for p in problems or []
    ] or [{"severity": "error", "code": code, "diagnostics": message}]
    body = {"resourceType": "OperationOutcome", "issue": issues}
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/fhir+json")


def _fhir_request() -> bool:
    return request.path == "/fhir" or request.path.startswith("/fhir/")


def _ours(exc: FhirMigraineError) -> Response:
    if _fhir_request():
        answer = operation_outcome(exc.http_status, exc.issue_code, exc.message, [p.as_dict() for p in exc.problems])
    else:
        answer = problem(exc.http_status, exc.title, exc.message, [p.as_dict() for p in exc.problems])
    if isinstance(exc, EhrUnavailable) and exc.retry_after is not None:
        # The EHR's own wait, passed on: a 503 may say when to come back (RFC 9110 section 10.2.3).
        answer.headers["Retry-After"] = str(math.ceil(exc.retry_after))
    return answer


def _http(exc: HTTPException) -> Response:
    if isinstance(exc, RequestEntityTooLarge):
        # A chunked body counted past MAX_CONTENT_LENGTH while it was read.
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return _ours(TooLarge(f"The request body is larger than the {limit} bytes this service takes "
                              "(FHIR_MIGRAINE_MAX_BODY_BYTES).", [Problem("$", f"more than the limit of {limit} bytes")]))
    if _fhir_request():
        code = {404: "not-found", 405: "not-supported"}.get(exc.code or 500, "exception")
        return operation_outcome(exc.code or 500, code, exc.description or exc.name)
    return problem(exc.code or 500, exc.name, exc.description or exc.name)


def _unexpected(exc: Exception) -> Response:
    # The exception type only: its text may carry patient data.
    log.error("unhandled error", extra={"error_type": type(exc).__name__}, exc_info=False)
    return problem(500, "Internal Server Error", "An unexpected error occurred; it has been logged.")


def register(app: Flask) -> None:
    app.register_error_handler(FhirMigraineError, _ours)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(Exception, _unexpected)
