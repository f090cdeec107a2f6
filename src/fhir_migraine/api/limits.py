"""Checks of a request before any view reads it: its size (413) and the type of its body (415)."""

from __future__ import annotations

from flask import Flask, request

from fhir_migraine.config import HttpSettings
from fhir_migraine.errors import Problem, TooLarge, UnsupportedMediaType

JSON = frozenset({"application/json"})
FHIR = frozenset({"application/json", "application/fhir+json"})
YAML = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})
NDJSON = frozenset({"application/x-ndjson"})
#: What each route that takes a body reads, by route template; any other POST or PUT takes JSON.
BODY_TYPES: dict[str, frozenset[str]] = {
    "/validate": FHIR,
    "/protocols/<protocol_id>": JSON | YAML,
    "/imports": NDJSON,
}
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def body_types(route: str) -> frozenset[str]:
    """The media types the route with this template takes."""
    if route == "/fhir" or route.startswith("/fhir/"):
        return FHIR
    return BODY_TYPES.get(route, JSON)


def body_limit(route: str, settings: HttpSettings) -> int:
    """The most bytes a body of the route may have: an import upload is streamed to disk, so it
    has its own, larger limit; every other body is read into memory."""
    return settings.max_import_bytes if route == "/imports" else settings.max_body_bytes


def check_size(length: int | None, limit: int) -> None:
    """A TooLarge when the declared ``Content-Length`` is above ``limit`` (nothing is read; a
    chunked body is counted while it is read, by werkzeug's ``MAX_CONTENT_LENGTH``)."""
    if length is not None and length > limit:
        raise TooLarge(
            f"The request body has {length} bytes; this endpoint takes at most {limit} "
            "(FHIR_MIGRAINE_MAX_BODY_BYTES, or FHIR_MIGRAINE_MAX_IMPORT_BYTES for POST /imports).",
            [Problem("$", f"has {length} bytes, more than the limit of {limit}")],
        )


def check_type(mimetype: str, route: str) -> None:
    """An UnsupportedMediaType when the body's type is not one the route reads."""
    allowed = body_types(route)
    if mimetype.lower() not in allowed:
        given = mimetype or "no Content-Type"
        raise UnsupportedMediaType(
            f"This endpoint reads {', '.join(sorted(allowed))}, not {given}.",
            [Problem("Content-Type", f"must be one of {', '.join(sorted(allowed))}")],
        )


def register(app: Flask, settings: HttpSettings) -> None:
    """Check every request that reaches a route (after the caller is authenticated)."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes

    @app.before_request
    def _limits() -> None:
        if request.url_rule is None or request.method not in WITH_BODY:
            return  # a route that does not exist answers 404/405 first
        route = request.url_rule.rule
        limit = body_limit(route, settings)
        check_size(request.content_length, limit)
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if request.content_length or chunked:
            check_type(request.mimetype, route)  # a POST without a body (a retry) declares no type
        if chunked and route != "/imports":  # an import streams its upload to disk and counts it there
            read_chunked(limit)


def read_chunked(limit: int) -> None:
    """Read a chunked body of at most ``limit`` bytes now, for the view to take (``get_data``
    returns it); a TooLarge as soon as it passes the limit. werkzeug stops reading silently at
    ``MAX_CONTENT_LENGTH``, so a body cut there would reach the view as if it were whole: one
    byte more is asked for, and its arrival is the proof of too much."""
    request.max_content_length = limit + 1
    data = request.get_data(cache=True)
    if len(data) > limit:
        check_size(len(data), limit)
