"""Bearer-token protection of every endpoint but ``/health``, ``/ready``, ``/fhir/metadata``, the
SMART app's browser pages under ``/smart/`` (GET only; see ``api.smart_app``) and the CDS Hooks
services under ``/cds-services`` (discovery is open; calls and feedback carry the EHR's own JWT,
checked by ``api.cds_auth``).

A caller presents a static token or a JWT signed with the configured key. Scopes:

- ``migraine:read``: reading endpoints (GET, and POSTs that only validate);
- ``migraine:write``: endpoints that map, store or push orders and diaries;
- ``migraine:protocols``: changing the protocol library (``PUT /protocols/{id}``), which sets the
  dose limits every order is checked against, so it is never implied by ``migraine:write``;
- ``migraine:metrics``: ``GET /metrics`` (the Prometheus scrape), and nothing else; no other scope
  implies it, so a scraper's token reads no clinical data and an API token no metrics.

The static ``FHIR_MIGRAINE_API_TOKEN`` grants read and write; the static
``FHIR_MIGRAINE_API_PROTOCOLS_TOKEN`` grants read and protocols; the static
``FHIR_MIGRAINE_API_METRICS_TOKEN`` grants metrics only. A JWT grants what its ``scope``
claim names; it must carry ``exp`` and the configured audience (``aud``), and the configured issuer
when one is set. Who made a request (a JWT's ``sub``, or which static token) is ``g.caller``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request

from fhir_migraine.api.errors import problem
from fhir_migraine.config import ApiAuthSettings
from fhir_migraine.errors import ConfigError

READ = "migraine:read"
WRITE = "migraine:write"
PROTOCOLS = "migraine:protocols"
METRICS = "migraine:metrics"
# Health, readiness and the CapabilityStatement are public (SMART clients read metadata first).
OPEN_ENDPOINTS = frozenset({"fhir_migraine.health", "fhir_migraine.ready", "fhir.metadata", "static"})
# The SMART app's browser routes (``api.smart_app``): a browser sent by the EHR carries no token of
# this service; the EHR's authorization of the clinician protects what they show.
SMART_BROWSER_ENDPOINTS = frozenset({"smart.launch", "smart.callback", "smart.latest", "smart.month"})
# The CDS Hooks endpoints (``api.cds_routes``): an EHR calls them with a JWT it signed itself, never
# with this service's token; ``api.cds_auth`` checks that JWT on every call and feedback.
CDS_ENDPOINTS = frozenset({"cds.discovery", "cds.call", "cds.feedback"})
# POST endpoints that only read (validation) need the read scope.
READ_ONLY_POSTS = frozenset({"fhir_migraine.validate", "fhir.fhir_validate", "fhir.fhir_validate_type"})
# Endpoints that change the protocol library.
PROTOCOL_WRITES = frozenset({"fhir_migraine.put_protocol"})
# The Prometheus scrape: its own scope, implied by no other.
METRICS_ENDPOINTS = frozenset({"metrics.metrics"})
#: The subjects recorded for the static tokens.
TOKEN_SUBJECT = "static-token"
PROTOCOLS_TOKEN_SUBJECT = "static-protocols-token"
METRICS_TOKEN_SUBJECT = "static-metrics-token"


@dataclass(frozen=True)
class Caller:
    """Who presented a valid token, and what it grants."""

    subject: str | None
    scopes: frozenset[str]


def _unauthorized(detail: str) -> Response:
    answer = problem(401, "Unauthorized", detail)
    answer.headers["WWW-Authenticate"] = 'Bearer realm="fhir-migraine"'
    return answer


def needed_scope(endpoint: str | None, method: str) -> str:
    if endpoint in PROTOCOL_WRITES:
        return PROTOCOLS
    if endpoint in METRICS_ENDPOINTS:
        return METRICS
    return READ if method in ("GET", "HEAD") or endpoint in READ_ONLY_POSTS else WRITE


class Guard:
    """Checks the bearer token of each request against the settings."""

    def __init__(self, settings: ApiAuthSettings) -> None:
        if not settings.token and not settings.jwt_key:
            raise ConfigError(
                "the service needs FHIR_MIGRAINE_API_TOKEN (a static bearer token) or "
                "FHIR_MIGRAINE_API_JWT_KEY (a PEM public key for caller JWTs)"
            )
        if settings.jwt_key and not settings.jwt_audience:
            # Without an audience, a token the same key signed for another service would work here.
            raise ConfigError(
                "FHIR_MIGRAINE_API_JWT_AUDIENCE is required with FHIR_MIGRAINE_API_JWT_KEY: set it to this "
                "service's URL, the 'aud' its callers' tokens must name"
            )
        if settings.token and settings.protocols_token and settings.token == settings.protocols_token:
            raise ConfigError("FHIR_MIGRAINE_API_PROTOCOLS_TOKEN must differ from FHIR_MIGRAINE_API_TOKEN")
        if settings.metrics_token and settings.metrics_token in (settings.token, settings.protocols_token):
            raise ConfigError("FHIR_MIGRAINE_API_METRICS_TOKEN must differ from FHIR_MIGRAINE_API_TOKEN and "
                              "FHIR_MIGRAINE_API_PROTOCOLS_TOKEN")
        self.settings = settings

    def caller(self, token: str) -> Caller | None:
        """Who a token names and what it grants, or None when it is not valid."""
        if _same(token, self.settings.token):
            return Caller(TOKEN_SUBJECT, frozenset({READ, WRITE}))
        if _same(token, self.settings.protocols_token):
            return Caller(PROTOCOLS_TOKEN_SUBJECT, frozenset({READ, PROTOCOLS}))
        if _same(token, self.settings.metrics_token):
            return Caller(METRICS_TOKEN_SUBJECT, frozenset({METRICS}))
        if self.settings.jwt_key and token.count(".") == 2:
            return self._jwt_caller(token)
        return None

    def _jwt_caller(self, token: str) -> Caller | None:
        import jwt

        required = ["exp", "aud"] + (["iss"] if self.settings.jwt_issuer else [])
        options: Any = {"require": required}
        key: Any = self.settings.jwt_key
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.settings.jwt_algorithms),
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options=options,
            )
        except jwt.PyJWTError:
            return None
        scope = claims.get("scope", "")
        subject = claims.get("sub")
        return Caller(subject if isinstance(subject, str) and subject else None,
                      frozenset(scope.split()) if isinstance(scope, str) else frozenset())

    def check(self) -> Response | None:
        if request.endpoint in OPEN_ENDPOINTS or request.endpoint in CDS_ENDPOINTS or request.endpoint is None:
            return None
        if request.endpoint in SMART_BROWSER_ENDPOINTS and request.method in ("GET", "HEAD"):
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("This endpoint needs an 'Authorization: Bearer <token>' header.")
        caller = self.caller(token.strip())
        if caller is None:
            return _unauthorized("The bearer token is not valid (unknown, expired, badly signed, or for another audience).")
        needed = needed_scope(request.endpoint, request.method)
        if needed not in caller.scopes:
            return problem(403, "Forbidden", f"This request needs the scope '{needed}'.")
        if needed == PROTOCOLS and caller.subject is None:
            return problem(403, "Forbidden", "Changing a protocol needs a token with a subject ('sub'): every change records who made it.")
        g.caller = caller
        return None


def _same(token: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(token.encode(), expected.encode())


def register(app: Flask, settings: ApiAuthSettings) -> None:
    guard = Guard(settings)
    app.before_request(guard.check)
