"""The OAuth2 token endpoint: where it is (a configured URL, checked, or the one the EHR publishes)
and what its answers mean (``lifetime``, ``refused``, ``transient``).

SMART App Launch 2.x, "Conformance" (https://hl7.org/fhir/smart-app-launch/conformance.html): a
SMART server serves a JSON document at its FHIR base URL + ``/.well-known/smart-configuration``
to anyone (no token is needed to read it), and ``token_endpoint`` is REQUIRED in it. When
``FHIR_MIGRAINE_EHR_TOKEN_URL`` is not set, ``DiscoveredTokenUrl`` reads it from there, once.

What a failure means depends on when it happens. At start-up (``at_start``) an answer that cannot
work (404, not JSON, no ``token_endpoint``, a URL that is not https) is a ``ConfigError``: the
setting has to change, so the CLI exits 2 and the service does not start. An EHR that cannot be
reached at start-up is not a configuration error: the look-up is tried again before the first
token request (``get``), where every failure is an ``EhrAuthError``, retryable when the EHR was
unreachable or answered 408, 425, 429 or 5xx.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from fhir_migraine.ehr.client import retry_after
from fhir_migraine.errors import ConfigError, EhrAuthError

log = logging.getLogger(__name__)

WELL_KNOWN = "/.well-known/smart-configuration"
#: Answers worth asking again later (besides every 5xx), of the token endpoint and of the EHR.
TRANSIENT_STATUS = frozenset({408, 425, 429})
#: Lifetime assumed when the token endpoint gives no ``expires_in`` (RFC 6749 §5.1 makes it optional).
DEFAULT_LIFETIME = 300.0
#: A JWT or its start (its header is base64url JSON, so it begins with "eyJ").
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}")


def check_token_url(url: str, name: str) -> str:
    """An https URL, or http to this machine only: credentials must not cross a network in clear text."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{name} must not be empty")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an absolute https URL; got {url[:200]!r}")
    if parts.username or parts.password:
        raise ConfigError(f"{name} must not hold credentials; give them in their own settings")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{name} must use https (plain http is allowed only to localhost); got {url[:200]!r}")
    return url


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DiscoveredTokenUrl:
    """The ``token_endpoint`` of ``fhir_base``'s SMART configuration, asked once and then kept."""

    def __init__(self, fhir_base: str, *, timeout: float = 10.0) -> None:
        self.url = fhir_base.rstrip("/") + WELL_KNOWN
        self.timeout = timeout
        self._lock = threading.Lock()
        self._found: str | None = None

    def __repr__(self) -> str:
        return f"DiscoveredTokenUrl({self.url!r})"

    def at_start(self, session: requests.Session) -> str | None:
        """Look the endpoint up now: it, or None when the EHR cannot be reached yet (``get`` tries
        again later); a ConfigError when the EHR answers with nothing usable."""
        try:
            return self._lookup(session)
        except EhrAuthError as exc:  # only transient failures are EhrAuthErrors here
            log.warning("token endpoint discovery deferred", extra={"error_type": type(exc).__name__,
                                                                    "status": exc.status})
            return None

    def get(self, session: requests.Session) -> str:
        """The token endpoint; an EhrAuthError when it cannot be had (retryable when the EHR was
        unreachable or busy, final when its answer cannot work)."""
        try:
            return self._lookup(session)
        except ConfigError as exc:
            raise EhrAuthError(exc.message) from None

    def _lookup(self, session: requests.Session) -> str:
        with self._lock:
            if self._found is None:
                self._found = self._ask(session)
            return self._found

    def _ask(self, session: requests.Session) -> str:
        try:
            response = session.get(self.url, headers={"Accept": "application/json"}, timeout=self.timeout)
        except requests.Timeout:
            raise transient(f"token endpoint discovery: {self.url} did not answer within {self.timeout:g} s") from None
        except requests.ConnectionError:
            raise transient(f"token endpoint discovery: could not connect to {self.url}") from None
        except requests.RequestException as exc:
            raise ConfigError(f"{self.url} could not be read ({type(exc).__name__}); "
                              "set FHIR_MIGRAINE_EHR_TOKEN_URL") from None
        status = response.status_code
        if status in TRANSIENT_STATUS or status >= 500:
            raise transient(f"token endpoint discovery: {self.url} answered {status}", status=status,
                             retry_after=retry_after(response.headers.get("Retry-After")))
        if status != 200:
            raise ConfigError(f"the EHR publishes no SMART configuration ({self.url} answered {status}); "
                              "set FHIR_MIGRAINE_EHR_TOKEN_URL")
        found = json_object(response).get("token_endpoint")
        if not isinstance(found, str) or not found.strip():
            raise ConfigError(f"{self.url} names no token_endpoint; set FHIR_MIGRAINE_EHR_TOKEN_URL")
        return check_token_url(found.strip(), f"token_endpoint of {self.url}")


def lifetime(body: Mapping[str, Any]) -> float:
    """Seconds the token lives: ``expires_in`` when it is a usable number, else the default."""
    value = body.get("expires_in")
    try:
        seconds = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else -1.0
    except ValueError:
        seconds = -1.0
    return seconds if seconds >= 0 and math.isfinite(seconds) else DEFAULT_LIFETIME


def json_object(response: requests.Response) -> dict[str, Any]:
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


def transient(message: str, **kwargs: Any) -> EhrAuthError:
    """An EhrAuthError the caller may retry later: the token endpoint is down, not our credentials wrong."""
    error = EhrAuthError(message, **kwargs)
    error.retryable = True
    return error


def refused(url: str, response: requests.Response, body: dict[str, Any], hidden: tuple[str, ...]) -> EhrAuthError:
    """The error for an answer that is not 2xx, with the endpoint's ``error`` and ``error_description`` (RFC 6749 §5.2)."""
    status = response.status_code
    message = f"the token endpoint {url} answered {status} {response.reason or ''}".rstrip()
    # Black out secrets before cutting the text short, so no partial secret survives the cut.
    said = [_redact(body[key], hidden)[:300] for key in ("error", "error_description") if isinstance(body.get(key), str) and body[key]]
    if said:
        message += ": " + " - ".join(said)
    wait = retry_after(response.headers.get("Retry-After"))
    if status in TRANSIENT_STATUS or status >= 500:
        return transient(message, status=status, retry_after=wait)
    return EhrAuthError(message, status=status, retry_after=wait)
