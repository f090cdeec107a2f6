"""Credentials for the EHR's FHIR API: none, a fixed bearer token, OAuth2 client credentials, SMART Backend Services.

The FHIR client asks ``auth.headers(session)`` before every request and calls ``auth.invalidate()``
when the EHR answers 401, then retries once. The two token-based kinds fetch an access token from
the token endpoint, cache it until shortly before it expires, and share one lock, so threads that
ask at the same moment wait for one fetch instead of making one each. Every failure of the token
endpoint is an ``EhrAuthError``; its message never holds a secret, an assertion or a token.
Without a configured token URL, the grants ask ``ehr.token_endpoint`` for the one the EHR publishes.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any
from urllib.parse import quote_plus

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fhir_migraine.config import (
    CLIENT_AUTH_METHODS,
    DEFAULT_CLOCK_SKEW,
    ENV_CLIENT_AUTH_METHOD,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_CLOCK_SKEW,
    ENV_JWT_ALG,
    ENV_KEY_ID,
    ENV_PRIVATE_KEY,
    ENV_TOKEN,
    ENV_TOKEN_URL,
    MAX_CLOCK_SKEW,
    EhrAuthSettings,
)
from fhir_migraine.ehr.interface import Auth, NoAuth
from fhir_migraine.ehr.token_endpoint import DiscoveredTokenUrl, check_token_url, json_object, lifetime, refused, transient
from fhir_migraine.errors import ConfigError, EhrAuthError

Clock = Callable[[], float]

#: Renew a token this many seconds before the token endpoint says it expires.
EXPIRY_MARGIN = 30.0
#: SMART Backend Services: the assertion's ``exp`` "SHALL be no more than five minutes in the future"
#: (App Launch 2.x, Backend Services, "Protocol details"); this is that ceiling, on the token endpoint's clock.
ASSERTION_CEILING = 300
#: What the project sends: ``exp`` four minutes after ``iat``, a minute inside that ceiling, and ``iat``
#: set back by the allowed clock skew (see ``SmartBackendServices.assertion``).
ASSERTION_LIFETIME = 240
#: The signing algorithms SMART Backend Services names (App Launch 2.x, "Backend Services").
SMART_ALGORITHMS = ("RS384", "ES384")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MIN_RSA_BITS = 2048


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

    token_url: str | None
    clock: Clock
    timeout: float
    discovery: DiscoveredTokenUrl | None
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

    def endpoint(self, session: requests.Session) -> str:
        """The token URL: the configured one, or the one the EHR publishes (looked up once)."""
        if self.token_url is not None:
            return self.token_url
        assert self.discovery is not None  # __post_init__ requires one of the two
        return self.discovery.get(session)

    # What each grant adds to the token request.
    def _form(self, token_url: str) -> dict[str, str]:
        raise NotImplementedError

    def _request_headers(self) -> dict[str, str]:
        return {}

    def _secrets(self, form: Mapping[str, str]) -> tuple[str, ...]:
        """What must never show in an error message."""
        return ()

    def _fetch(self, session: requests.Session) -> str:
        """Ask for a token (the caller holds the lock), cache it and return it."""
        url = self.endpoint(session)
        form = self._form(url)
        hidden = self._secrets(form)
        headers = {"Accept": "application/json", **self._request_headers()}
        try:
            # No redirects: a POST turned into a GET elsewhere would only hide the real problem.
            response = session.post(url, data=form, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.Timeout:
            raise transient(f"the token endpoint {url} did not answer within {self.timeout:g} s") from None
        except requests.ConnectionError:
            raise transient(f"could not connect to the token endpoint {url}") from None
        except requests.RequestException as exc:
            raise EhrAuthError(f"the request to the token endpoint {url} failed ({type(exc).__name__})") from None
        body = json_object(response)
        if not 200 <= response.status_code < 300:
            raise refused(url, response, body, hidden)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise EhrAuthError(
                f"the token endpoint {url} answered {response.status_code} without an access_token",
                status=response.status_code,
            )
        token_type = body.get("token_type", "Bearer")  # RFC 6749 §5.1 requires it; some servers leave it out
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise EhrAuthError(f"the token endpoint {url} issued a {str(token_type)[:40]!r} token, not a Bearer token")
        if _bad_token_text(token):
            raise EhrAuthError(f"the token endpoint {url} issued an access token that cannot go in a header")
        now = self.clock()
        self._cache.token = token
        self._cache.renew_at = now + max(0.0, lifetime(body) - EXPIRY_MARGIN)
        return token


@dataclass(frozen=True)
class ClientCredentials(_TokenGrant):
    """OAuth2 client credentials grant (RFC 6749 §4.4), the client authenticated by its secret
    (§2.3.1): by HTTP Basic (``client_secret_basic``, what every server must accept) or with
    ``client_id`` and ``client_secret`` in the form (``client_secret_post``, for servers that ask it)."""

    token_url: str | None
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    _: KW_ONLY
    method: str = "client_secret_basic"
    discovery: DiscoveredTokenUrl | None = None
    clock: Clock = field(default=time.time, repr=False, compare=False)
    timeout: float = 10.0
    _cache: _TokenCache = field(default_factory=_TokenCache, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_endpoint(self.token_url, self.discovery)
        _check_present(self.client_id, "client_id")
        _check_present(self.client_secret, "client_secret")
        if self.method not in CLIENT_AUTH_METHODS:
            raise ConfigError(f"method must be one of {', '.join(CLIENT_AUTH_METHODS)}; got {self.method!r}")

    def _form(self, token_url: str) -> dict[str, str]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        if self.method == "client_secret_post":
            # RFC 6749 §2.3.1: in the request body; §2.3: one method per request, so no Basic header then.
            form["client_id"] = self.client_id
            form["client_secret"] = self.client_secret
        return form

    def _basic_credentials(self) -> str:
        # RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined and base64-encoded.
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
        return base64.b64encode(pair.encode("utf-8")).decode("ascii")

    def _request_headers(self) -> dict[str, str]:
        if self.method != "client_secret_basic":
            return {}
        return {"Authorization": f"Basic {self._basic_credentials()}"}

    def _secrets(self, form: Mapping[str, str]) -> tuple[str, ...]:
        return (self.client_secret, quote_plus(self.client_secret), self._basic_credentials())


@dataclass(frozen=True)
class SmartBackendServices(_TokenGrant):
    """SMART Backend Services: client credentials with a signed JWT assertion instead of a secret.

    See HL7 SMART App Launch 2.x, "Backend Services" (authenticating with ``private_key_jwt``,
    RFC 7523 §2.2): each token request carries a fresh assertion with its own ``jti``.
    """

    token_url: str | None
    client_id: str
    private_key_pem: str | bytes = field(repr=False)
    _: KW_ONLY
    key_id: str
    algorithm: str = "RS384"
    scope: str = "system/*.rs"
    clock_skew: int = DEFAULT_CLOCK_SKEW
    discovery: DiscoveredTokenUrl | None = None
    clock: Clock = field(default=time.time, repr=False, compare=False)
    timeout: float = 10.0
    _cache: _TokenCache = field(default_factory=_TokenCache, init=False, repr=False, compare=False)
    _key: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_endpoint(self.token_url, self.discovery)
        _check_present(self.client_id, "client_id")
        _check_present(self.key_id, "key_id")
        if isinstance(self.clock_skew, bool) or not isinstance(self.clock_skew, int) or not 0 <= self.clock_skew <= MAX_CLOCK_SKEW:
            raise ConfigError(f"clock_skew must be whole seconds from 0 to {MAX_CLOCK_SKEW}; got {self.clock_skew!r}")
        _check_present(self.scope, "scope")
        _check_algorithm(self.algorithm, "algorithm")
        object.__setattr__(self, "_key", load_signing_key(self.private_key_pem, self.algorithm, "private_key_pem"))

    def assertion(self, audience: str | None = None) -> str:
        """A new signed client assertion for the token endpoint ``audience`` (the configured one by
        default), with a ``jti`` never used before.

        ``iat`` is ``clock_skew`` seconds back and ``exp`` four minutes after ``iat``. So for a token
        endpoint whose clock runs up to ``clock_skew`` seconds behind ours, ``iat`` is never in its
        future and ``exp`` never more than four minutes ahead (the ceiling is five); for one whose
        clock runs ahead, the assertion stays valid while the difference is under
        ``240 - clock_skew`` seconds."""
        aud = audience or self.token_url
        if not aud:
            raise ConfigError("the assertion needs the token endpoint as its audience")
        issued = int(self.clock()) - self.clock_skew
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": aud,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers={"kid": self.key_id, "typ": "JWT"})

    def _form(self, token_url: str) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": self.assertion(token_url),
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


def auth_from_settings(
    settings: EhrAuthSettings,
    *,
    fhir_base: str | None = None,
    verify: bool | str = True,
    timeout: float = 10.0,
) -> Auth:
    """The credentials ``settings`` describe (``Settings.from_env`` has checked that the mode's
    variables are present); a ConfigError naming the variable of a value that cannot work.

    Without a token URL, the EHR at ``fhir_base`` is asked for its SMART configuration now, with the
    FHIR client's TLS verification ``verify``: a ConfigError when it answers with nothing usable, a
    later look-up (through the FHIR client's session) when it cannot be reached (``ehr.token_endpoint``)."""
    if settings.mode == "none":
        return NoAuth()
    if settings.mode == "bearer":
        return BearerToken(_check_token_text(_present(settings.token, ENV_TOKEN), ENV_TOKEN))
    if settings.mode not in ("client-credentials", "smart-backend"):
        raise ConfigError(f"unknown EHR authentication mode {settings.mode!r}")
    client_id = _present(settings.client_id, ENV_CLIENT_ID)
    # Every local check first: the EHR is asked for its token endpoint only when nothing else is wrong.
    if settings.mode == "client-credentials":
        method = settings.client_auth_method
        if method not in CLIENT_AUTH_METHODS:
            raise ConfigError(f"{ENV_CLIENT_AUTH_METHOD} must be one of {', '.join(CLIENT_AUTH_METHODS)}; got {method!r}")
        secret = _present(settings.client_secret, ENV_CLIENT_SECRET)
        token_url, discovery = _token_endpoint(settings, fhir_base, verify, timeout)
        return ClientCredentials(token_url, client_id, secret, settings.scope, method=method, discovery=discovery)
    algorithm = _check_algorithm(settings.jwt_alg.upper(), ENV_JWT_ALG)
    key_id = _present(settings.key_id, ENV_KEY_ID)
    pem = _present(settings.private_key_pem, ENV_PRIVATE_KEY)
    load_signing_key(pem, algorithm, ENV_PRIVATE_KEY)  # to name the variable if the key does not fit
    if not 0 <= settings.clock_skew <= MAX_CLOCK_SKEW:
        raise ConfigError(f"{ENV_CLOCK_SKEW} must be from 0 to {MAX_CLOCK_SKEW} seconds; got {settings.clock_skew}")
    token_url, discovery = _token_endpoint(settings, fhir_base, verify, timeout)
    return SmartBackendServices(
        token_url, client_id, pem, key_id=key_id, algorithm=algorithm, scope=settings.scope or "system/*.rs",
        clock_skew=settings.clock_skew, discovery=discovery,
    )


def _token_endpoint(
    settings: EhrAuthSettings, fhir_base: str | None, verify: bool | str, timeout: float
) -> tuple[str | None, DiscoveredTokenUrl | None]:
    """The configured token URL, or the discovery that finds it (tried once now)."""
    if settings.token_url is not None:
        return check_token_url(_present(settings.token_url, ENV_TOKEN_URL), ENV_TOKEN_URL), None
    if not fhir_base:
        raise ConfigError(f"{ENV_TOKEN_URL} is required (or an EHR URL, to discover it from its SMART configuration)")
    discovery = DiscoveredTokenUrl(fhir_base, timeout=timeout)
    with requests.Session() as session:
        session.verify = verify
        discovery.at_start(session)
    return None, discovery


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


def _check_endpoint(token_url: str | None, discovery: DiscoveredTokenUrl | None) -> None:
    if token_url is None and discovery is None:
        raise ConfigError("token_url is required when the token endpoint is not discovered")
    if token_url is not None:
        check_token_url(token_url, "token_url")


def _bad_token_text(token: str) -> bool:
    """True for text that cannot follow ``Bearer `` in a header (RFC 6750 §2.1 allows no spaces)."""
    return not token or any(c.isspace() or not c.isprintable() for c in token)


def _check_token_text(token: str, name: str) -> str:
    if not isinstance(token, str) or _bad_token_text(token):
        raise ConfigError(f"{name} must be a non-empty token without spaces or control characters")
    return token
