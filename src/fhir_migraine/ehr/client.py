"""A FHIR R4 client over ``requests``: base URL, timeouts, TLS verification, pluggable auth.

Every failure becomes an ``EhrError`` here, in one place (``translate_status`` for answers,
``translate_exception`` for the rest, ``answers.check_answer`` for a transaction's entries), by
what the answer means (``statuses``): connection errors, timeouts, 408, 425, 429 and 5xx are
``EhrUnavailable`` (retryable, with ``Retry-After``; a time-out of ours is its ``EhrTimeout``); a 409 is ``EhrConflict`` (retryable: a write
that raced another, such as two transactions creating the same placeholder Patient); a 401 after
one fresh token, or a failing token endpoint, is ``EhrAuthError``; 405, 501, 505 and an
OperationOutcome ``not-supported`` are ``EhrUnsupported`` (final: the EHR cannot do it); other 4xx
(412: a conditional create matched several resources, 400, 422…) are ``EhrRejected`` carrying the
EHR's OperationOutcome, final.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import requests

from fhir_migraine import metrics
from fhir_migraine.ehr.answers import check_answer
from fhir_migraine.ehr.interface import Auth, ExportStatus, NoAuth, Page, Written
from fhir_migraine.ehr.paging import Pager, PagingPolicy, origin
from fhir_migraine.ehr.statuses import STATUS_MEANING, meaning, outcome_class, outcome_summary
from fhir_migraine.errors import ConfigError, EhrError, EhrRejected, EhrTimeout, EhrUnavailable, EhrUnsupported

__all__ = ["STATUS_MEANING", "FhirClient", "interaction_of", "retry_after", "translate_exception", "translate_status"]

FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"
#: Bytes read at a time while a Bulk Data file is written to disk.
DOWNLOAD_CHUNK = 64 * 1024
#: Redirects followed for one Bulk Data file (each checked as the file's own URL).
MAX_REDIRECTS = 3



def retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _outcome(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" else None


def _answered_at(response: requests.Response) -> float | None:
    """When the EHR answered by its own clock (the ``Date`` header), so that a ``Retry-After`` date is
    measured on that clock and not skewed by ours; None without a usable header (ours is used)."""
    try:
        when = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError):
        return None
    return when.timestamp() if when is not None and when.tzinfo is not None else None


def translate_status(response: requests.Response) -> EhrError:
    """The EhrError for an answer that is not a success."""
    status = response.status_code
    outcome = _outcome(response)
    detail = outcome_summary(outcome)
    message = f"the EHR answered {status} {response.reason or ''}".rstrip() + (f": {detail}" if detail else "")
    found = meaning(status, outcome)
    wait = retry_after(response.headers.get("Retry-After"), now=_answered_at(response)) if found.retryable else None
    return found(message, status=status, outcome=outcome, retry_after=wait)


def translate_exception(exc: requests.RequestException) -> EhrError:
    """The EhrError for a ``requests`` failure: every one is retryable but a bad URL or TLS setup."""
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
        return EhrRejected(f"the EHR URL is not usable: {type(exc).__name__}")
    if isinstance(exc, requests.exceptions.SSLError):
        return EhrUnavailable("TLS handshake with the EHR failed (is its certificate trusted?)")
    if isinstance(exc, requests.exceptions.Timeout):
        return EhrTimeout(f"the EHR did not answer in time ({type(exc).__name__})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return EhrUnavailable("could not connect to the EHR, or the connection broke")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return EhrUnavailable("the EHR's answer was cut off")
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return EhrUnavailable("the EHR's answer could not be decoded")
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return EhrRejected("the EHR redirected too many times")
    return EhrUnavailable(f"the request to the EHR failed ({type(exc).__name__})")


def interaction_of(method: str, url: str, base_url: str, *, bundle_type: str | None = None) -> str:
    """The FHIR interaction a request is, from its method and the shape of its URL (the label of
    the EHR call metrics, never the URL itself): ``capabilities``, ``transaction``, ``batch``,
    ``read``, ``vread``, ``history``, ``search``, ``create``, ``update``, ``patch``, ``delete``,
    ``operation``, or ``other``."""
    method = method.upper()
    path = urlsplit(url).path.rstrip("/")
    base = urlsplit(base_url).path.rstrip("/")
    rest = path[len(base):] if path == base or path.startswith(f"{base}/") else path
    segments = [s for s in rest.split("/") if s]
    if any(s.startswith("$") for s in segments):
        return "operation"
    if not segments:
        if method == "POST":
            return bundle_type if bundle_type in ("transaction", "batch") else "transaction"
        return "search" if method == "GET" else "other"  # a page link of a search on the base
    if segments == ["metadata"]:
        return "capabilities" if method == "GET" else "other"
    if segments[-1] == "_search" or (method == "GET" and len(segments) == 1):
        return "search"
    if method == "GET":
        if len(segments) == 2:
            return "read"
        if len(segments) >= 3 and segments[2] == "_history":
            return "vread" if len(segments) == 4 else "history"
        return "other"
    if method == "POST" and len(segments) == 1:
        return "create"
    return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "other")


class FhirClient:
    """One EHR's FHIR API. Credentials go only to the base URL's origin and the ``trusted_origins``
    (an API gateway the EHR's links lead to): a page link elsewhere is refused before any request."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        verify: bool | str = True,
        session: requests.Session | None = None,
        trusted_origins: Iterable[str] = (),
        max_count: int = PagingPolicy.max_count,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        try:
            self.origins = frozenset({origin(self.base_url), *(origin(o) for o in trusted_origins)})
        except ValueError:
            raise ConfigError("the EHR URL and any trusted origin must be absolute http(s) URLs") from None
        self.max_count = max_count
        self.auth = auth or NoAuth()
        self.timeout = (connect_timeout, timeout)
        self.session = session or requests.Session()
        self.session.verify = verify

    def _request(self, method: str, url: str, *, interaction: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Accept": FHIR_JSON, **kwargs.pop("headers", {})}
        interaction = interaction or interaction_of(method, url, self.base_url)
        for attempt in (1, 2):
            started: float | None = None  # a token fetch is not timed as the EHR's call
            try:
                auth_headers = self.auth.headers(self.session)
                started = time.perf_counter()
                response = self.session.request(method, url, headers={**headers, **auth_headers}, timeout=self.timeout, **kwargs)
                _ = response.content  # read the whole body here, so a cut-off answer fails inside the try
            except requests.RequestException as exc:
                error = translate_exception(exc)
                if started is not None:
                    metrics.observe_ehr_call(interaction, outcome_class(error), time.perf_counter() - started)
                raise error from None
            metrics.observe_ehr_call(interaction, metrics.status_class(response.status_code), time.perf_counter() - started)
            if response.status_code == 401 and attempt == 1:
                self.auth.invalidate()  # an expired token: fetch a new one and try once more
                continue
            if not response.ok:
                raise translate_status(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise EhrUnavailable("the EHR answered with something that is not JSON") from None
        if not isinstance(body, dict):
            raise EhrUnavailable("the EHR answered with JSON that is not a resource")
        return body

    def metadata(self) -> dict[str, Any]:
        return self._json(self._request("GET", f"{self.base_url}/metadata"))

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction (or batch) Bundle; the transaction-response (batch-response) Bundle,
        only when every entry of it is 2xx (``answers.check_answer``)."""
        body = json.dumps(bundle, ensure_ascii=False).encode("utf-8")
        kind = bundle.get("type")
        response = self._request("POST", self.base_url, data=body, headers={"Content-Type": f"{FHIR_JSON}; charset=utf-8"},
                                 interaction=kind if kind in ("transaction", "batch") else "transaction")
        answer = self._json(response)
        check_answer(bundle, answer, retry_after=retry_after(response.headers.get("Retry-After")))
        return answer

    def get_page(self, url: str, params: dict[str, str] | None = None) -> Page:
        """One page of a search: GET ``url``, refused (``EhrRejected``, nothing sent) when its origin is
        not one the credentials may reach."""
        self._check_origin(url, "page link")
        response = self._request("GET", url, params=params, interaction="search")
        return Page(self._json(response), response.headers.get("Date"))

    def _check_origin(self, url: str, what: str) -> None:
        try:
            where = origin(url)
        except ValueError:
            raise EhrRejected(f"the EHR's {what} is not an http(s) URL") from None
        if where not in self.origins:
            raise EhrRejected(f"the EHR's {what} leads to {where}, not to the EHR's origin or a trusted one "
                              "(FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN): refused, the credentials are not sent there")

    # --- FHIR Bulk Data (the asynchronous request pattern) -----------------------------------------

    def kick_off(self, path: str, params: dict[str, str]) -> str:
        """Start an export (``GET [base]/{path}`` with ``Prefer: respond-async``); the status URL of
        the EHR's 202 (``Content-Location``). EhrUnsupported when the EHR answers anything but 202."""
        response = self._request("GET", f"{self.base_url}/{path}", params=params, headers={"Prefer": "respond-async"},
                                 interaction="export")
        if response.status_code != 202:
            raise EhrUnsupported(f"the EHR answered the export kick-off with {response.status_code}, not 202 Accepted")
        status_url = response.headers.get("Content-Location", "")
        if not status_url:
            raise EhrUnavailable("the EHR accepted the export without a Content-Location to ask its status at")
        status_url = urljoin(f"{self.base_url}/", status_url)  # RFC 9110: relative to the request's URL
        self._check_origin(status_url, "export status URL")
        return status_url

    def export_status(self, status_url: str) -> ExportStatus:
        """Ask an export's status once: 202 (in progress) or 200 with the manifest; an EhrError for
        an error answer (a 429 or 5xx is ``EhrUnavailable`` with its ``Retry-After``)."""
        self._check_origin(status_url, "export status URL")
        response = self._request("GET", status_url, interaction="export-status")
        if response.status_code == 202:
            return ExportStatus(None, retry_after(response.headers.get("Retry-After"), now=_answered_at(response)),
                                response.headers.get("X-Progress"))
        return ExportStatus(self._json(response))

    def delete_export(self, status_url: str) -> None:
        """Tell the EHR the export's files may go (``DELETE`` on the status URL); an EhrError if it refuses."""
        self._check_origin(status_url, "export status URL")
        self._request("DELETE", status_url, interaction="export-delete")

    def download(self, url: str, out: IO[bytes], *, authorized: bool, limit: int) -> int:
        """Stream one Bulk Data file into ``out``, never whole in memory; its size in bytes. With
        ``authorized`` (the manifest's ``requiresAccessToken``) the credentials go with it, so the URL
        must be on an origin they may reach; without, none are sent and the URL must be https (as the
        EHR's own, when that is plain http). A redirect is followed (at most 3) under the same rules
        for its target. EhrRejected past ``limit`` bytes."""
        for _ in range(MAX_REDIRECTS + 1):
            self._check_download(url, authorized)
            for attempt in (1, 2):
                headers = {"Accept": FHIR_NDJSON, **(self.auth.headers(self.session) if authorized else {})}
                started, outcome = time.perf_counter(), "network"  # the whole file is timed, not only its headers
                try:
                    with self.session.get(url, headers=headers, timeout=self.timeout, stream=True,
                                          allow_redirects=False) as response:
                        outcome = metrics.status_class(response.status_code)
                        if response.status_code == 401 and authorized and attempt == 1:
                            self.auth.invalidate()
                            continue
                        if response.is_redirect:
                            url = urljoin(url, response.headers.get("Location", ""))
                            break
                        if not response.ok:
                            _ = response.content
                            raise translate_status(response)
                        return _stream(response, out, limit)
                except requests.RequestException as exc:
                    outcome = "network"  # the answer broke off
                    raise translate_exception(exc) from None
                finally:
                    metrics.observe_ehr_call("export-download", outcome, time.perf_counter() - started)
        raise EhrRejected(f"the EHR's export file redirected more than {MAX_REDIRECTS} times")

    def _check_download(self, url: str, authorized: bool) -> None:
        if authorized:
            self._check_origin(url, "export file URL")
        elif not url.startswith("https://") and not (url.startswith("http://") and self.base_url.startswith("http://")):
            # PHI goes over TLS, unless the EHR itself is spoken to without it (a local test server).
            raise EhrRejected("the EHR's export file URL is not an https URL")

    def pages(self, resource_type: str, params: dict[str, str]) -> Iterator[Page]:
        """Every page of a search with its Date header, following ``next`` links (``ehr.paging``; no
        retries: the gateway's pulls retry through a ``Pager`` of their own)."""
        return Pager(self, PagingPolicy(max_retries=0, max_count=self.max_count)).pages(resource_type, params)

    def search(self, resource_type: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Every page (a searchset Bundle) of a search, as ``pages``."""
        return (page.bundle for page in self.pages(resource_type, params))

    def create(self, resource: dict[str, Any], *, if_none_exist: str | None = None) -> Written:
        headers = {"If-None-Exist": if_none_exist} if if_none_exist else {}
        return self._write("POST", f"{self.base_url}/{resource['resourceType']}", resource, headers)

    def update(self, resource: dict[str, Any], *, if_match: str | None = None) -> Written:
        headers = {"If-Match": if_match} if if_match else {}
        return self._write("PUT", f"{self.base_url}/{resource['resourceType']}/{resource['id']}", resource, headers)

    def read(self, resource_type: str, resource_id: str) -> Written:
        response = self._request("GET", f"{self.base_url}/{resource_type}/{resource_id}")
        return written(response.status_code, response.headers, self._json(response), resource_type)

    def _write(self, method: str, url: str, resource: dict[str, Any], headers: dict[str, str]) -> Written:
        body = json.dumps(resource, ensure_ascii=False).encode("utf-8")
        # return=representation: the resource as stored, to compare with what was sent; an EHR
        # may still answer with an empty body and a Location (then the id is read from it).
        response = self._request(method, url, data=body, headers={
            "Content-Type": f"{FHIR_JSON}; charset=utf-8", "Prefer": "return=representation", **headers})
        answer = self._json(response) if response.content.strip() else None
        return written(response.status_code, response.headers, answer, resource["resourceType"])

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        """PUT a resource as it is (tests set up the EHR with it); the EHR's answer."""
        answer = self.update(resource)
        return answer.resource or {}


def _stream(response: requests.Response, out: IO[bytes], limit: int) -> int:
    """Write an answer's body into ``out`` a chunk at a time; its size. EhrRejected past ``limit``."""
    size = 0
    for chunk in response.iter_content(DOWNLOAD_CHUNK):
        size += len(chunk)
        if size > limit:
            raise EhrRejected(f"an export file is larger than {limit} bytes (FHIR_MIGRAINE_BULK_MAX_FILE_BYTES)")
        out.write(chunk)
    return size


def written(status: int, headers: Any, body: dict[str, Any] | None, resource_type: str) -> Written:
    """A single write's or read's answer: id and version from the body's resource when it is one of
    the type, else from ``Location`` (``[base/]Type/id/_history/version``) and ``ETag`` (``W/"3"``)."""
    resource = body if isinstance(body, dict) and body.get("resourceType") == resource_type else None
    found_id, version = location_parts(headers.get("Location") or headers.get("Content-Location") or "", resource_type)
    if resource is not None and isinstance(resource.get("id"), str):
        found_id = resource["id"]
        meta = resource.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("versionId"), str):
            version = meta["versionId"]
    etag = headers.get("ETag") or ""
    if version is None and etag:
        version = etag.removeprefix("W/").strip('"') or None
    return Written(status, found_id, version, resource)


def location_parts(location: str, resource_type: str) -> tuple[str | None, str | None]:
    """``(id, version)`` of a Location such as ``http://ehr/fhir/Observation/12/_history/3`` or
    ``Observation/12``; ``(None, None)`` when it names no resource of the type."""
    parts = location.split("?")[0].rstrip("/").split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == resource_type and parts[i + 1]:
            version = parts[i + 3] if len(parts) > i + 3 and parts[i + 2] == "_history" else None
            return parts[i + 1], version or None
    return None, None
