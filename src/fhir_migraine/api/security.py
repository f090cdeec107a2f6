"""Bearer-token protection of every endpoint but ``/health`` and ``/ready``.

A caller presents either the configured static token (all scopes) or a JWT signed with the
configured key, whose ``scope`` claim grants ``migraine:read`` and/or ``migraine:write``.
Reading endpoints need read; those that map, store or push need write.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Flask, Response, request

from fhir_migraine.api.errors import problem
from fhir_migraine.config import ApiAuthSettings
from fhir_migraine.errors import ConfigError

READ = "migraine:read"
WRITE = "migraine:write"
# Health, readiness and the CapabilityStatement are public (SMART clients read metadata first).
OPEN_ENDPOINTS = frozenset({"fhir_migraine.health", "fhir_migraine.ready", "fhir.metadata", "static"})
# POST endpoints that only read (validation) need the read scope.
READ_ONLY_POSTS = frozenset({"fhir_migraine.validate", "fhir.fhir_validate", "fhir.fhir_validate_type"})


def _unauthorized(detail: str) -> Response:
    answer = problem(401, "Unauthorized", detail)
    answer.headers["WWW-Authenticate"] = 'Bearer realm="fhir-migraine"'
    return answer


class Guard:
    """Checks the bearer token of each request against the settings."""

    def __init__(self, settings: ApiAuthSettings) -> None:
        if not settings.token and not settings.jwt_key:
            raise ConfigError(
                "the service needs FHIR_MIGRAINE_API_TOKEN (a static bearer token) or "
                "FHIR_MIGRAINE_API_JWT_KEY (a PEM public key for caller JWTs)"
            )
        self.settings = settings

    def scopes(self, token: str) -> set[str] | None:
        """The scopes a token grants, or None when it is not valid."""
        if self.settings.token and hmac.compare_digest(token.encode(), self.settings.token.encode()):
            return {READ, WRITE}
        if self.settings.jwt_key and token.count(".") == 2:
            return self._jwt_scopes(token)
        return None

    def _jwt_scopes(self, token: str) -> set[str] | None:
        import jwt

        options: Any = {"require": ["exp"], "verify_aud": self.settings.jwt_audience is not None}
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
        return set(scope.split()) if isinstance(scope, str) else set()

    def check(self) -> Response | None:
        if request.endpoint in OPEN_ENDPOINTS or request.endpoint is None:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("This endpoint needs an 'Authorization: Bearer <token>' header.")
        scopes = self.scopes(token.strip())
        if scopes is None:
            return _unauthorized("The bearer token is not valid (unknown, expired or badly signed).")
        needed = READ if request.method in ("GET", "HEAD") or request.endpoint in READ_ONLY_POSTS else WRITE
        if needed not in scopes:
            return problem(403, "Forbidden", f"This request needs the scope '{needed}'.")
        return None


def register(app: Flask, settings: ApiAuthSettings) -> None:
    guard = Guard(settings)
    app.before_request(guard.check)
