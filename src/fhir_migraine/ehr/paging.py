"""Every page of a FHIR search, followed safely: ``next`` links resolved against the EHR's base URL
and refused when they lead to an origin the credentials must not reach, ``_count`` kept within
the EHR's maximum, and a page the EHR is too busy for (429, 503) or too slow with asked again,
where it failed, within a bounded number of retries and a bounded total wait.

    pager = Pager(client, PagingPolicy(max_retries=5, max_wait=60))
    for page in pager.pages("Observation", {"subject": "Patient/1"}):
        page.bundle, page.date      # the searchset Bundle and the answer's Date header

Rules relied on: a search's paging links are opaque to the client, which follows them as given
(FHIR R4 search.html, "Paging"); a relative reference is relative to the service base URL (FHIR R4
references.html, ``Reference.reference``), other forms resolve as RFC 3986 section 5.2 says; an
origin is scheme, host and port (RFC 6454); ``Retry-After`` is delta-seconds or an HTTP-date
(RFC 9110 section 10.2.3).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from fhir_migraine.ehr.interface import Page
from fhir_migraine.errors import EhrError, EhrRejected, EhrTimeout, EhrUnavailable

log = logging.getLogger(__name__)

Resource = dict[str, Any]
MAX_PAGES = 10_000
#: What a page is asked again for: the EHR is busy (429, 503) or timed out (408, 504), or it did not
#: answer within our time-out. Anything else fails the search at once (a 500 is a fault, not a load).
RETRIED_STATUSES = frozenset({408, 429, 503, 504})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class PagingPolicy:
    """How one pull (or one plain search) pages: retries of one page, seconds of waiting in all,
    the first wait when the EHR gives no ``Retry-After`` (doubled at each retry), the largest
    ``_count`` asked."""

    max_retries: int = 5
    max_wait: float = 60.0
    backoff: float = 1.0
    max_count: int = 200


class PageSource(Protocol):
    """What the pager needs from the FHIR client: its base URL, and one GET of a page."""

    base_url: str

    def get_page(self, url: str, params: dict[str, str] | None = None) -> Page:
        """One page, from one GET of ``url`` (with ``params``), or an ``EhrError``."""
        ...


def origin(url: str) -> str:
    """``scheme://host:port`` of an absolute http(s) URL, lower-cased, the default port made explicit;
    ``ValueError`` for anything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("not an absolute http(s) URL")
    port = parts.port or _DEFAULT_PORTS[scheme]  # ValueError for a port that is not a number
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}:{port}"


def resolve_link(base_url: str, link: str) -> str:
    """The absolute URL of a ``next`` link as the EHR wrote it. A path without a leading ``/``
    (``Observation?page=2``) is under the base URL, as FHIR's relative references are; a query
    alone (``?_getpages=…``) is the base URL's; ``/path``, ``//host/path`` and absolute URLs
    resolve as RFC 3986 says. The fragment, which no server sees, is dropped."""
    base = base_url.rstrip("/")
    link = link.strip().split("#", 1)[0]
    if link.startswith("?"):
        return base + link
    return urljoin(base + "/", link)


def next_link(page: Resource) -> str | None:
    """The ``next`` link of a searchset page, as written, or None on the last page."""
    links = page.get("link")
    for item in links if isinstance(links, list) else []:
        if isinstance(item, dict) and item.get("relation") == "next":
            url = item.get("url")
            return url if isinstance(url, str) and url.strip() else None
    return None


def retried(error: EhrError) -> bool:
    """Whether a failed page is asked again: the EHR is busy or timed out, or did not answer in time."""
    return isinstance(error, EhrTimeout) or (isinstance(error, EhrUnavailable) and error.status in RETRIED_STATUSES)


def bounded_count(params: dict[str, str], maximum: int) -> dict[str, str]:
    """``params`` with a ``_count`` above ``maximum`` brought down to it."""
    asked = params.get("_count", "")
    return {**params, "_count": str(maximum)} if asked.isdigit() and int(asked) > maximum else params


class Pager:
    """Pages of searches against one ``PageSource``. The wait budget (``max_wait``: the time failed
    attempts took and the waits before asking again) is the pager's: a pull makes one pager for all
    its searches, so they share it."""

    def __init__(self, source: PageSource, policy: PagingPolicy | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.policy = policy or PagingPolicy()
        self.sleep = sleep
        self.clock = clock
        self.waited = 0.0  # seconds lost to failed pages so far: their attempts and the waits after them

    def search(self, resource_type: str, params: dict[str, str]) -> Iterator[Resource]:
        """Every page (a searchset Bundle) of one search: what ``interface.Searches`` asks."""
        return (page.bundle for page in self.pages(resource_type, params))

    def pages(self, resource_type: str, params: dict[str, str]) -> Iterator[Page]:
        """Every page of one search, with each answer's Date header."""
        base = self.source.base_url.rstrip("/")
        page = self._fetch(f"{base}/{resource_type}", bounded_count(params, self.policy.max_count), resource_type, 1)
        for number in range(2, MAX_PAGES + 2):
            yield page
            link = next_link(page.bundle)
            if link is None:
                return
            # The origin check is the client's (``get_page``), where the credentials are added.
            page = self._fetch(resolve_link(base, link), None, resource_type, number)
        raise EhrRejected(f"the search of {resource_type} has more than {MAX_PAGES} pages")

    def _fetch(self, url: str, params: dict[str, str] | None, resource_type: str, number: int) -> Page:
        """One page, asked again where it failed while the policy allows."""
        attempt = 0
        while True:
            began = self.clock()
            try:
                return self.source.get_page(url, params)
            except EhrError as error:
                if not retried(error) or self.policy.max_retries == 0:
                    raise
                self.waited += max(0.0, self.clock() - began)  # a time-out costs its wait too
                attempt += 1
                wait = self._wait(error, attempt, resource_type, number)
                answer = _answer(error)
            log.info("page %d of the %s search: the EHR answered %s; asking again in %.1f s (retry %d)",
                     number, resource_type, answer, wait, attempt)
            self.sleep(wait)
            self.waited += wait

    def _wait(self, error: EhrError, attempt: int, resource_type: str, number: int) -> float:
        """How long to wait before asking again: the EHR's ``Retry-After``, else a doubling backoff;
        the error, saying why, when the policy's retries or total wait would be exceeded."""
        policy = self.policy
        where = f"page {number} of the {resource_type} search"
        if attempt > policy.max_retries:
            raise _gave_up(error, f"{where} failed {attempt} times ({_answer(error)}); "
                                  f"retries stop at {policy.max_retries} (FHIR_MIGRAINE_PULL_MAX_RETRIES)")
        left = max(0.0, policy.max_wait - self.waited)
        if error.retry_after is not None:
            if error.retry_after > left:
                raise _gave_up(error, f"the EHR asked to wait {error.retry_after:g} s before {where}, more than the "
                                      f"{left:.1f} s left of FHIR_MIGRAINE_PULL_MAX_WAIT")
            return error.retry_after
        wait = policy.backoff * 2 ** (attempt - 1)
        if wait > left:
            raise _gave_up(error, f"{where} failed ({_answer(error)}) and the {policy.max_wait:g} s of "
                                  "FHIR_MIGRAINE_PULL_MAX_WAIT are spent")
        return wait


def _answer(error: EhrError) -> str:
    return str(error.status) if error.status is not None else "nothing in time"


def _gave_up(error: EhrError, message: str) -> EhrUnavailable:
    """The error a search ends with when it stops retrying: of the cause's class (retryable later)."""
    kind = type(error) if isinstance(error, EhrUnavailable) else EhrUnavailable
    return kind(message, status=error.status, outcome=error.outcome, retry_after=error.retry_after)
