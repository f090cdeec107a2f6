"""Credentials for the EHR's FHIR API: none, a fixed bearer token, OAuth2 client credentials, SMART Backend Services.

The FHIR client asks ``auth.headers(session)`` before every request and calls ``auth.invalidate()``
when the EHR answers 401, then retries once. The two token-based kinds fetch an access token from
the token endpoint, cache it until shortly before it expires, and share one lock, so threads that
ask at the same moment wait for one fetch instead of making one each. Every failure of the token
endpoint is an ``EhrAuthError``; its message never holds a secret, an assertion or a token.
"""

from __future__ import annotations

import base64
import ipaddress
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fhir_migraine.config import (
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_JWT_ALG,
    ENV_KEY_ID,
    ENV_PRIVATE_KEY,
    ENV_TOKEN,
    ENV_TOKEN_URL,
    EhrAuthSettings,
)
from fhir_migraine.ehr.client import retry_after
from fhir_migraine.ehr.interface import Auth, NoAuth
from fhir_migraine.errors import ConfigError, EhrAuthError

Clock = Callable[[], float]

#: Renew a token this many seconds before the token endpoint says it expires.
EXPIRY_MARGIN = 30.0
#: Lifetime assumed when the token endpoint gives no ``expires_in`` (RFC 6749 §5.1 makes it optional).
DEFAULT_LIFETIME = 300.0
#: SMART Backend Services: the assertion's ``exp`` is at most five minutes ahead.
ASSERTION_LIFETIME = 300
#: The signing algorithms SMART Backend Services names (App Launch 2.x, "Backend Services").
SMART_ALGORITHMS = ("RS384", "ES384")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MIN_RSA_BITS = 2048
#: A JWT or its start (its header is base64url JSON, so it begins with "eyJ").
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}")
#: Answers of the token endpoint worth trying again later (besides every 5xx).
TRANSIENT_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True)
class BearerToken:
    """A fixed access token issued out of band (RFC 6750 §2.1)."""

    token: str = field(repr=False)

    def __post_init__(self) -> None:
        _check_token_text(self.token, "token")

    def headers(self, session: requests.Session) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def invalidate(self) -> None:
        return None  # nothing to renew: the next 401 becomes an EhrAuthError in the client


class _TokenCache:
    """One access token and when to stop using it, behind a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token: str | None = None
        self.renew_at = 0.0


class _TokenGrant:
    """The shared half of the two grants: ask the token endpoint, cache its answer, report failures."""

    token_url: str
    clock: Clock
    timeout: float
    _cache: _TokenCache

    def headers(self, session: requests.Session) -> dict[str, str]:
        with self._cache.lock:
            token = self._cache.token
            if token is None or self.clock() >= self._cache.renew_at:
                token = self._fetch(session)
        return {"Authorization": f"Bearer {token}"}

    def invalidate(self) -> None:
        with self._cache.lock:
            self._cache.token = None
            self._cache.renew_at = 0.0

    # What each grant adds to the token request.
    def _form(self) -> dict[str, str]:
        raise NotImplementedError

    def _request_headers(self) -> dict[str, str]:
        return {}

    def _secrets(self, form: Mapping[str, str]) -> tuple[str, ...]:
        """What must never show in an error message."""
        return ()

    def _fetch(self, session: requests.Session) -> str:
        """Ask for a token (the caller holds the lock), cache it and return it."""
        form = self._form()
        hidden = self._secrets(form)
        headers = {"Accept": "application/json", **self._request_headers()}
        try:
            # No redirects: a POST turned into a GET elsewhere would only hide the real problem.
            response = session.post(self.token_url, data=form, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.Timeout:
            raise _transient(f"the token endpoint {self.token_url} did not answer within {self.timeout:g} s") from None
        except requests.ConnectionError:
            raise _transient(f"could not connect to the token endpoint {self.token_url}") from None
        except requests.RequestException as exc:
            raise EhrAuthError(f"the request to the token endpoint {self.token_url} failed ({type(exc).__name__})") from None
        body = _json_object(response)
        if not 200 <= response.status_code < 300:
            raise _refused(self.token_url, response, body, hidden)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise EhrAuthError(
                f"the token endpoint {self.token_url} answered {response.status_code} without an access_token",
                status=response.status_code,
            )
        token_type = body.get("token_type", "Bearer")  # RFC 6749 §5.1 requires it; some servers leave it out
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise EhrAuthError(f"the token endpoint {self.token_url} issued a {str(token_type)[:40]!r} token, not a Bearer token")
        if _bad_token_text(token):
            raise EhrAuthError(f"the token endpoint {self.token_url} issued an access token that cannot go in a header")
        now = self.clock()
        self._cache.token = token
        self._cache.renew_at = now + max(0.0, _lifetime(body) - EXPIRY_MARGIN)
        return token


@dataclass(frozen=True)
class ClientCredentials(_TokenGrant):
    """OAuth2 client credentials grant (RFC 6749 §4.4), the client authenticated by HTTP Basic (§2.3.1)."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    _: KW_ONLY
    clock: Clock = field(default=time.time, repr=False, compare=False)
    timeout: float = 10.0
    _cache: _TokenCache = field(default_factory=_TokenCache, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_token_url(self.token_url, "token_url")
        _check_present(self.client_id, "client_id")
        _check_present(self.client_secret, "client_secret")

    def _form(self) -> dict[str, str]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        return form

    def _basic_credentials(self) -> str:
        # RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined and base64-encoded.
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
        return base64.b64encode(pair.encode("utf-8")).decode("ascii")

    def _request_headers(self) -> dict[str, str]:
        return {"Authorization": f"Basic {self._basic_credentials()}"}

    def _secrets(self, form: Mapping[str, str]) -> tuple[str, ...]:
        return (self.client_secret, quote_plus(self.client_secret), self._basic_credentials())


@dataclass(frozen=True)
class SmartBackendServices(_TokenGrant):
    """SMART Backend Services: client credentials with a signed JWT assertion instead of a secret.

    See HL7 SMART App Launch 2.x, "Backend Services" (authenticating with ``private_key_jwt``,
    RFC 7523 §2.2): each token request carries a fresh assertion with its own ``jti``.
    """

    token_url: str
    client_id: str
    private_key_pem: str | bytes = field(repr=False)
    _: KW_ONLY
    key_id: str
    algorithm: str = "RS384"
    scope: str = "system/*.rs"
    clock: Clock = field(default=time.time, repr=False, compare=False)
    timeout: float = 10.0
    _cache: _TokenCache = field(default_factory=_TokenCache, init=False, repr=False, compare=False)
    _key: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_token_url(self.token_url, "token_url")
        _check_present(self.client_id, "client_id")
        _check_present(self.key_id, "key_id")
        _check_present(self.scope, "scope")
        _check_algorithm(self.algorithm, "algorithm")
        object.__setattr__(self, "_key", load_signing_key(self.private_key_pem, self.algorithm, "private_key_pem"))

    def assertion(self) -> str:
        """A new signed client assertion, valid for five minutes."""
        now = int(self.clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "exp": now + ASSERTION_LIFETIME,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers={"kid": self.key_id, "typ": "JWT"})

    def _form(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": self.assertion(),
        }

    def _secrets(self, form: Mapping[str, str]) -> tuple[str, ...]:
        return (form["client_assertion"],)


def load_signing_key(pem: str | bytes, algorithm: str, name: str = "private key") -> Any:
    """The private key in ``pem``, checked to fit ``algorithm`` (an RSA key of 2048+ bits, or an EC P-384 key)."""
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{name}: not an unencrypted PEM private key") from None
    except Exception as exc:  # cryptography raises its own UnsupportedAlgorithm for unknown key types
        raise ConfigError(f"{name}: the private key cannot be used ({type(exc).__name__})") from None
    if algorithm == "RS384":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(f"{name}: RS384 needs an RSA private key")
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(f"{name}: the RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are needed")
    elif algorithm == "ES384":
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP384R1):
            raise ConfigError(f"{name}: ES384 needs an EC private key on the P-384 curve (secp384r1)")
    return key


def auth_from_settings(settings: EhrAuthSettings) -> Auth:
    """The credentials ``settings`` describe (``Settings.from_env`` has checked that the mode's
    variables are present); a ConfigError naming the variable of a value that cannot work."""
    if settings.mode == "none":
        return NoAuth()
    if settings.mode == "bearer":
        return BearerToken(_check_token_text(_present(settings.token, ENV_TOKEN), ENV_TOKEN))
    token_url = _check_token_url(_present(settings.token_url, ENV_TOKEN_URL), ENV_TOKEN_URL)
    client_id = _present(settings.client_id, ENV_CLIENT_ID)
    if settings.mode == "client-credentials":
        return ClientCredentials(token_url, client_id, _present(settings.client_secret, ENV_CLIENT_SECRET), settings.scope)
    if settings.mode != "smart-backend":
        raise ConfigError(f"unknown EHR authentication mode {settings.mode!r}")
    algorithm = _check_algorithm(settings.jwt_alg.upper(), ENV_JWT_ALG)
    key_id = _present(settings.key_id, ENV_KEY_ID)
    pem = _present(settings.private_key_pem, ENV_PRIVATE_KEY)
    load_signing_key(pem, algorithm, ENV_PRIVATE_KEY)  # to name the variable if the key does not fit
    return SmartBackendServices(
        token_url, client_id, pem, key_id=key_id, algorithm=algorithm, scope=settings.scope or "system/*.rs"
    )


# --- checks and helpers -------------------------------------------------------------------------


def _present(value: str | None, name: str) -> str:
    if value is None or not value.strip():
        raise ConfigError(f"{name} is required")
    return value


def _check_present(value: str | None, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must not be empty")
    return value


def _check_algorithm(algorithm: str, name: str) -> str:
    if algorithm not in SMART_ALGORITHMS:
        raise ConfigError(f"{name} must be one of {', '.join(SMART_ALGORITHMS)}; got {algorithm!r}")
    return algorithm


def _check_token_url(url: str, name: str) -> str:
    """An https URL, or http to this machine only: credentials must not cross a network in clear text."""
    _check_present(url, name)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an absolute https URL; got {url!r}")
    if parts.username or parts.password:
        raise ConfigError(f"{name} must not hold credentials; give them in their own settings")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(f"{name} must use https (plain http is allowed only to localhost); got {url!r}")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bad_token_text(token: str) -> bool:
    """True for text that cannot follow ``Bearer `` in a header (RFC 6750 §2.1 allows no spaces)."""
    return not token or any(c.isspace() or not c.isprintable() for c in token)


def _check_token_text(token: str, name: str) -> str:
    if not isinstance(token, str) or _bad_token_text(token):
        raise ConfigError(f"{name} must be a non-empty token without spaces or control characters")
    return token


def _lifetime(body: Mapping[str, Any]) -> float:
    """Seconds the token lives: ``expires_in`` when it is a usable number, else the default."""
    value = body.get("expires_in")
    try:
        seconds = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else -1.0
    except ValueError:
        seconds = -1.0
    return seconds if seconds >= 0 and math.isfinite(seconds) else DEFAULT_LIFETIME


def _json_object(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object, or an empty one when it has none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _redact(text: str, hidden: tuple[str, ...]) -> str:
    """``text`` with every secret in ``hidden`` blacked out, in case the endpoint echoed one back."""
    for secret in hidden:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _JWT.sub("[redacted]", text)  # any JWT at all: an assertion or a token we never sent


def _transient(message: str, **kwargs: Any) -> EhrAuthError:
    """An EhrAuthError the caller may retry later: the token endpoint is down, not our credentials wrong."""
    error = EhrAuthError(message, **kwargs)
    error.retryable = True
    return error


def _refused(url: str, response: requests.Response, body: dict[str, Any], hidden: tuple[str, ...]) -> EhrAuthError:
    """The error for an answer that is not 2xx, with the endpoint's ``error`` and ``error_description`` (RFC 6749 §5.2)."""
    status = response.status_code
    message = f"the token endpoint {url} answered {status} {response.reason or ''}".rstrip()
    # Black out secrets before cutting the text short, so no partial secret survives the cut.
    said = [_redact(body[key], hidden)[:300] for key in ("error", "error_description") if isinstance(body.get(key), str) and body[key]]
    if said:
        message += ": " + " - ".join(said)
    wait = retry_after(response.headers.get("Retry-After"))
    if status in TRANSIENT_STATUS or status >= 500:
        return _transient(message, status=status, retry_after=wait)
    return EhrAuthError(message, status=status, retry_after=wait)
