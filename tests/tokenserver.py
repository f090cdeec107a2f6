"""A small real OAuth2 token endpoint (and one FHIR read behind it) for the tests of ``ehr.auth``.

It runs in the test process on 127.0.0.1 with a port of the system's choosing. Clients registered
with a secret authenticate by HTTP Basic or in the form body (RFC 6749 §2.3.1), never both at once;
clients registered with a public key send a SMART Backend Services JWT assertion, checked for
signature, ``alg``, ``kid``, ``typ``, ``iss`` = ``sub``, ``aud``, an ``exp`` at most five minutes
ahead of this server's clock, an ``iat`` (when given) not in its future, and a ``jti`` never seen before. ``fail`` makes it answer 500, 400
``invalid_client``, slowly, or with a broken body. ``fhir_url + "/.well-known/smart-configuration"``
publishes ``token_endpoint`` (SMART App Launch 2.x, Conformance), or what ``well_known`` says.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import jwt
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class JwtClient:
    """A SMART backend client: its public key, key id and signing algorithm."""

    public_key: Any
    key_id: str
    algorithm: str


@dataclass
class TokenServer:
    """The token endpoint at ``url``; the FHIR read ``fhir_url + "/metadata"`` accepts its tokens."""

    secrets: dict[str, str] = field(default_factory=dict)
    jwt_clients: dict[str, JwtClient] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    expires_in: int | None = 3600
    fail: str | None = None
    echo: bool = False  # put the credentials it got into error_description, to test that they are hidden
    delay: float = 0.0  # seconds to wait before answering a token request
    # The SMART configuration's status and body (None: one naming this server's token endpoint).
    well_known_status: int = 200
    well_known: Any = None
    well_known_requests: int = 0
    requests: int = 0
    issued: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    assertions: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)  # (header, claims)
    jtis: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="token-server", daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def url(self) -> str:
        return f"{self.base}/token"

    @property
    def fhir_url(self) -> str:
        return f"{self.base}/fhir"

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, so only when it runs
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def revoke_all(self) -> None:
        """Make every token issued so far invalid, as an EHR does when it rotates keys."""
        with self._lock:
            self.revoked.update(self.issued)

    # --- the WSGI application ------------------------------------------------------------------

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/token" and request.method == "POST":
            response = self._token(request)
        elif request.path == "/fhir/metadata":
            response = self._metadata(request)
        elif request.path == "/fhir/.well-known/smart-configuration" and request.method == "GET":
            response = self._smart_configuration(request)
        else:
            response = Response(status=404)
        return response(environ, start_response)

    def _metadata(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        with self._lock:
            valid = token in self.issued and token not in self.revoked
        if not valid:
            return Response(status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        body = {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1"}
        return _json(200, body, content_type="application/fhir+json")

    def _smart_configuration(self, request: Request) -> Response:
        with self._lock:
            self.well_known_requests += 1
        if "Authorization" in request.headers:  # the document is public: a client must not send credentials for it
            return _json(400, {"error": "credentials sent to a public document"})
        body = self.well_known
        if body is None:
            body = {
                "token_endpoint": self.url,
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
                "grant_types_supported": ["client_credentials"],
                "capabilities": ["client-confidential-asymmetric", "client-confidential-symmetric", "permission-v2"],
            }
        if isinstance(body, str):
            return Response(body, status=self.well_known_status, content_type="text/html")
        return _json(self.well_known_status, body)

    def _token(self, request: Request) -> Response:
        with self._lock:
            self.requests += 1
            form = dict(request.form)
            self.forms.append(form)
        if self.delay or self.fail == "slow":
            time.sleep(self.delay or 1.0)
        if self.fail == "500":
            return _json(500, {"error": "temporarily_unavailable"}, headers={"Retry-After": "7"})
        if self.fail == "invalid_client":
            return self._refuse("the client is not registered", request, form)
        if form.get("grant_type") != "client_credentials":
            return _json(400, {"error": "unsupported_grant_type"})
        if form.get("client_assertion_type") == JWT_BEARER:
            reason = self._check_assertion(form.get("client_assertion", ""), form)
        elif "client_secret" in form or "client_id" in form:
            reason = self._check_post(request.headers.get("Authorization", ""), form)
        else:
            reason = self._check_basic(request.headers.get("Authorization", ""))
        if reason:
            with self._lock:
                self.refusals.append(reason)
            return self._refuse(reason, request, form)
        return self._issue(form)

    def _issue(self, form: dict[str, str]) -> Response:
        if self.fail == "not_json":
            return Response("<html>welcome</html>", status=200, content_type="text/html")
        with self._lock:
            token = f"token-{next(self._numbers)}-{time.monotonic_ns()}"
            self.issued.append(token)
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.fail == "no_token":
            del body["access_token"]
        if self.fail == "mac_token":
            body["token_type"] = "mac"
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if form.get("scope"):
            body["scope"] = form["scope"]
        return _json(200, body)

    def _refuse(self, reason: str, request: Request, form: dict[str, str]) -> Response:
        if self.echo:
            reason += f" (got {request.headers.get('Authorization', '')} {json.dumps(form)})"
        status = 401 if request.headers.get("Authorization", "").startswith("Basic ") else 400
        headers = {"WWW-Authenticate": "Basic"} if status == 401 else {}
        return _json(status, {"error": "invalid_client", "error_description": reason}, headers=headers)

    def _check_basic(self, header: str) -> str | None:
        if not header.startswith("Basic "):
            return "no client authentication"
        try:
            pair = base64.b64decode(header[len("Basic ") :], validate=True).decode("utf-8")
        except ValueError:
            return "Basic credentials are not base64"
        client_id, colon, secret = pair.partition(":")
        # RFC 6749 §2.3.1: both parts are form-urlencoded.
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        if not colon or self.secrets.get(client_id) != secret:
            return "unknown client or wrong secret"
        return None

    def _check_post(self, header: str, form: dict[str, str]) -> str | None:
        """``client_secret_post``: the id and secret in the form, and no other client authentication."""
        if header.startswith("Basic "):
            return "more than one client authentication method"
        if not form.get("client_id") or self.secrets.get(form["client_id"]) != form.get("client_secret"):
            return "unknown client or wrong secret"
        return None

    def _check_assertion(self, assertion: str, form: dict[str, str]) -> str | None:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            return f"the assertion is not a JWT ({exc})"
        client = self.jwt_clients.get(unverified.get("iss", ""))
        if client is None:
            return "unknown iss"
        if header.get("alg") != client.algorithm:
            return f"alg {header.get('alg')} is not the client's {client.algorithm}"
        if header.get("kid") != client.key_id:
            return "unknown kid"
        if header.get("typ") != "JWT":
            return "typ is not JWT"
        try:
            claims = jwt.decode(
                assertion,
                client.public_key,
                algorithms=[client.algorithm],
                audience=self.url,
                issuer=unverified["iss"],
                # exp and iat are checked below against this server's clock, which the tests may move.
                options={"require": ["iss", "sub", "aud", "exp", "jti"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            return f"the assertion does not verify ({type(exc).__name__}: {exc})"
        if claims["sub"] != claims["iss"]:
            return "sub is not iss"
        now = self.clock()
        if claims["exp"] <= now:
            return "the assertion has expired"
        if claims["exp"] > now + 300:
            return "exp is more than 5 minutes ahead"
        if "iat" in claims and claims["iat"] > now:  # strict, as a JWT library is by default
            return "iat is in the future"
        if not form.get("scope"):
            return "no scope"
        with self._lock:
            if claims["jti"] in self.jtis:
                return "jti has been used before"
            self.jtis.add(claims["jti"])
            self.assertions.append((header, claims))
        return None


def _json(status: int, body: Any, *, headers: dict[str, str] | None = None, content_type: str = "application/json") -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type=content_type)
