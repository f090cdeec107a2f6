"""The headers every answer of the service carries, whether Flask or gunicorn itself answers, and
the JSON answer the routes give."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json

#: Answers carry PHI: no cache (the browser's, a proxy's) may keep them, and no client may guess
#: another type than the one declared.
SECURITY_HEADERS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"))


def register(app: Flask) -> None:
    @app.after_request
    def _secure(response: Response) -> Response:
        for name, value in SECURITY_HEADERS:
            response.headers[name] = value
        return response


def json_answer(body: Any, status: int = 200, mimetype: str = "application/json") -> Response:
    """``body`` as a JSON answer (UTF-8 as it is, not escaped)."""
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=mimetype)
