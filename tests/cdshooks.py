"""Playing a CDS client (an EHR) in tests: its signing keys and JWKS, the JWTs it signs for a call,
settings that trust it, and a tiny HTTP server on this machine that answers FHIR reads and
searches (or a JWKS) from a dict and records every request's headers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_migraine.config import CdsSettings, Settings

PUBLIC_URL = "https://migraine.example.org"
EHR_ISS = "https://ehr.example.org"
KID = "ehr-key-1"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def jwks(key: Any, kid: str = KID, alg: str = "RS384") -> dict[str, Any]:
    """The public JWKS of ``key``."""
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
    return {"keys": [{**jwk, "kid": kid, "alg": alg, "use": "sig"}]}


@dataclass
class Ehr:
    """A CDS client: its issuer, signing key and algorithm."""

    key: Any
    alg: str = "RS384"
    iss: str = EHR_ISS
    kid: str = KID

    def token(self, service_id: str, *, aud: str | None = None, exp_in: float = 120, headers: dict[str, Any] | None = None,
              key: Any = None, alg: str | None = None, drop: tuple[str, ...] = (), **claims: Any) -> str:
        """A JWT for a call of ``service_id`` (each with a new ``jti`` unless one is given), without
        the claims in ``drop``; a header given as None is left out."""
        now = int(time.time())
        payload = {"iss": self.iss, "sub": "ehr-client", "aud": aud or f"{PUBLIC_URL}/cds-services/{service_id}",
                   "exp": now + int(exp_in), "iat": now, "jti": str(uuid.uuid4()), **claims}
        payload = {k: v for k, v in payload.items() if k not in drop}
        header = {k: v for k, v in {"kid": self.kid, "typ": "JWT", **(headers or {})}.items() if v is not None}
        return jwt.encode(payload, key or self.key, algorithm=alg or self.alg, headers=header)

    def headers(self, service_id: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(service_id, **kwargs)}"}


def trusting(settings: Settings, tmp_path: Path, ehr: Ehr, **cds: Any) -> Settings:
    """``settings`` with the CDS services on and ``ehr`` trusted through a JWKS file."""
    path = tmp_path / "ehr-jwks.json"
    path.write_text(json.dumps(jwks(ehr.key, ehr.kid, ehr.alg)))
    found = CdsSettings(public_url=PUBLIC_URL, issuers=((ehr.iss, str(path)),), **cds)
    return replace(settings, cds=found)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class FakeServer:
    """Answers GET ``<path>?<query>`` with ``routes[path_and_query]`` (a JSON document) or 404;
    ``delay`` seconds before each answer; every request recorded."""

    def __init__(self, routes: dict[str, Any], delay: float = 0.0) -> None:
        self.routes, self.delay, self.seen = routes, delay, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                owner.seen.append(Seen(self.path, dict(self.headers)))
                time.sleep(owner.delay)
                body = owner.routes.get(self.path)
                data = json.dumps(body).encode() if body is not None else b'{"resourceType": "OperationOutcome"}'
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[FakeServer]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}


def sign_request(patient: str = "p-4711", **extra: Any) -> dict[str, Any]:
    """An order-sign call's body for ``patient`` with an empty draft order set."""
    return {"hook": "order-sign", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/dr-1", "patientId": patient,
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []}}, **extra}
