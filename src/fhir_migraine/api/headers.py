"""The headers every answer of the service carries, whether Flask or gunicorn itself answers."""

from __future__ import annotations

from flask import Flask, Response

#: Answers carry PHI: no cache (the browser's, a proxy's) may keep them, and no client may guess
#: another type than the one declared.
SECURITY_HEADERS = (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"))


def register(app: Flask) -> None:
    @app.after_request
    def _secure(response: Response) -> Response:
        for name, value in SECURITY_HEADERS:
            response.headers[name] = value
        return response
