"""Trusting CDS clients (CDS Hooks 2.0, https://cds-hooks.hl7.org/2.0/#trusting-cds-clients): every
call to a CDS service carries ``Authorization: Bearer <JWT>``, signed by the EHR with an asymmetric
key, which this module verifies.

- the JWT's ``iss`` must be a configured issuer (``FHIR_MIGRAINE_CDS_ISSUERS``);
- its key is found by the header's ``kid`` in the issuer's configured JWKS (a file, or an https
  URL), or in the JWKS at the header's ``jku`` when ``FHIR_MIGRAINE_CDS_JKU_ALLOWED`` allows that URL
  for that ``iss`` (any other ``jku`` is refused before anything is fetched);
- ``alg`` must be one of ``FHIR_MIGRAINE_CDS_ALGORITHMS`` (never ``none``, never HMAC);
- ``aud`` must be this service's URL, ``<FHIR_MIGRAINE_PUBLIC_URL>/cds-services/<id>``; ``exp``,
  ``iat`` and ``jti`` are required, ``exp`` at most five minutes ahead (the specification's
  lifetime);
- a ``jti`` is accepted once: it is kept in the SQLite database until its token expires, so a
  replayed token is refused whichever process of the service it reaches.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt

from fhir_migraine.config import CdsSettings
from fhir_migraine.store import open_store

#: Seconds of clock difference allowed between the EHR and this service.
LEEWAY_S = 30
#: The longest lifetime a CDS client's JWT may have ("no more than 5 minutes", CDS Hooks 2.0).
MAX_LIFETIME_S = 300
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cds_jti (
    iss TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (iss, jti)
);
"""


class JwtRefused(Exception):
    """A CDS client's JWT that is not accepted; the message says why, without the token."""


@dataclass(frozen=True)
class CdsClient:
    """Who called: the EHR's ``iss`` and its ``sub`` (the client id it was registered with)."""

    iss: str
    sub: str | None


class ReplayStore:
    """The ``jti`` already accepted, kept until their token expires."""

    def __init__(self, database: str) -> None:
        self._store = open_store(database, _SCHEMA)

    def first_use(self, iss: str, jti: str, expires_at: float, *, now: float) -> bool:
        """Record ``jti`` of ``iss``; whether it was not seen before (while its token is valid)."""
        with self._store.transaction() as db:
            db.execute("DELETE FROM cds_jti WHERE expires_at < ?", (now - LEEWAY_S,))
            added = db.execute("INSERT INTO cds_jti (iss, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                               (iss, jti, expires_at)).rowcount
        return bool(added)


class KeySets:
    """The JWKS of each source (a file read once, a URL fetched by ``PyJWKClient`` with its cache)."""

    def __init__(self, settings: CdsSettings) -> None:
        self.settings = settings
        self._clients: dict[str, jwt.PyJWKClient] = {}
        self._files: dict[str, jwt.PyJWKSet] = {}
        self._lock = threading.Lock()

    def key(self, source: str, kid: str) -> Any:
        """The public key ``kid`` of the JWKS at ``source``; JwtRefused when there is none."""
        try:
            if "://" in source:
                return self._client(source).get_signing_key(kid).key
            for found in self._file(source).keys:
                if found.key_id == kid:
                    return found.key
        except jwt.PyJWKClientConnectionError:
            raise JwtRefused("the EHR's key set could not be fetched") from None
        except (jwt.PyJWKClientError, jwt.PyJWKError, jwt.InvalidKeyError):
            raise JwtRefused("no usable key of the EHR's key set has the token's 'kid'") from None
        raise JwtRefused("no key of the EHR's key set has the token's 'kid'")

    def _client(self, url: str) -> jwt.PyJWKClient:
        with self._lock:
            if url not in self._clients:
                self._clients[url] = jwt.PyJWKClient(url, timeout=self.settings.fetch_timeout)
            return self._clients[url]

    def _file(self, path: str) -> jwt.PyJWKSet:
        with self._lock:
            if path not in self._files:
                try:
                    with open(path, encoding="utf-8") as handle:
                        self._files[path] = jwt.PyJWKSet.from_dict(json.load(handle))
                except (OSError, ValueError, jwt.PyJWKSetError):
                    raise JwtRefused("the configured key set of the EHR cannot be read") from None
            return self._files[path]


class CdsAuthenticator:
    """Checks the JWT of a call to one CDS service (see the module doc)."""

    def __init__(self, settings: CdsSettings, replays: ReplayStore, keys: KeySets | None = None) -> None:
        self.settings = settings
        self.replays = replays
        self.keys = keys or KeySets(settings)

    def audience(self, service_id: str) -> str | None:
        return f"{self.settings.public_url}/cds-services/{service_id}" if self.settings.public_url else None

    def client(self, token: str, service_id: str, *, feedback: bool = False, now: float | None = None) -> CdsClient:
        """The caller a valid token names; JwtRefused saying what is wrong otherwise. A feedback
        call's ``aud`` may be the service's URL or its feedback URL."""
        service = self.audience(service_id)
        if service is None or not self.settings.issuers:
            raise JwtRefused("the CDS services are not configured (FHIR_MIGRAINE_PUBLIC_URL, FHIR_MIGRAINE_CDS_ISSUERS)")
        now = time.time() if now is None else now
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise JwtRefused("the bearer token is not a JWT") from None
        alg, kid, iss = header.get("alg"), header.get("kid"), unverified.get("iss")
        if alg not in self.settings.algorithms:
            raise JwtRefused(f"the token's 'alg' is not one this service accepts ({', '.join(self.settings.algorithms)})")
        if not isinstance(kid, str) or not kid:
            raise JwtRefused("the token's header has no 'kid'")
        if not isinstance(iss, str) or not self.settings.trusts(iss):
            raise JwtRefused("the token's 'iss' is not an EHR this service trusts")
        key = self.keys.key(self._source(iss, header.get("jku")), kid)
        audience = [service, f"{service}/feedback"] if feedback else [service]
        claims = self._verified(token, key, alg, audience, iss, now)
        if not self.replays.first_use(iss, claims["jti"], float(claims["exp"]), now=now):
            raise JwtRefused("the token's 'jti' was used before: a token is accepted once")
        sub = claims.get("sub")
        return CdsClient(iss, sub if isinstance(sub, str) else None)

    def _source(self, iss: str, jku: Any) -> str:
        if jku is not None:
            # Each jku is allowed for one issuer only: another trusted EHR's keys cannot sign for it.
            if not isinstance(jku, str) or (iss, jku) not in self.settings.jku_allowed:
                raise JwtRefused("the token's 'jku' is not on this service's allow-list for its 'iss' "
                                 "(FHIR_MIGRAINE_CDS_JKU_ALLOWED)")
            return jku
        configured = self.settings.jwks_of(iss)
        if configured is None:
            raise JwtRefused("no key set is configured for this 'iss' and the token names no 'jku'")
        return configured

    def _verified(self, token: str, key: Any, alg: str, audience: list[str], iss: str, now: float) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=[alg], audience=audience, issuer=iss,
                                                leeway=LEEWAY_S, options={"require": REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError:
            raise JwtRefused("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise JwtRefused("the token's 'aud' is not this CDS service's URL") from None
        except jwt.MissingRequiredClaimError as exc:
            raise JwtRefused(f"the token has no '{exc.claim}' claim") from None
        except jwt.PyJWTError:
            raise JwtRefused("the token's signature, issuer or dates are not valid") from None
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            raise JwtRefused("the token's 'jti' must be a non-empty string")
        if float(claims["exp"]) > now + MAX_LIFETIME_S + LEEWAY_S:
            raise JwtRefused("the token's 'exp' is more than five minutes ahead")
        return claims
