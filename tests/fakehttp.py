"""A fake EHR behind ``requests``: a ``Session`` whose ``request`` answers FHIR searches from the
resources it holds, page by page, with ``next`` links in the form a test chooses, and answers
scripted faults (a status with headers, or a ``requests`` exception) at chosen request numbers.
Nothing goes on the network; every request is recorded with its headers. Also the example orders
and diary month as the EHR would hold them."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from fhir_migraine.mapping.fhir import identifiers
from tests.conftest import EXAMPLES

BASE = "https://ehr.example/fhir"
LAST_UPDATED = "2026-11-30T10:00:00.000Z"
DATE = "Mon, 30 Nov 2026 10:00:05 GMT"
PATIENT = "Patient/123"

#: How a next link is written, given the base URL, the resource type and the paging query.
LINK_FORMS: dict[str, Callable[[str, str, str], str]] = {
    "absolute": lambda base, kind, query: f"{base}?{query}",
    "query": lambda base, kind, query: f"?{query}",
    "relative-path": lambda base, kind, query: f"{kind}?{query}",
    "absolute-path": lambda base, kind, query: f"{urlsplit(base).path}?{query}",
}


@dataclass
class Sent:
    """One request the client made: method, full URL (with its query) and headers."""

    method: str
    url: str
    headers: dict[str, str]


@dataclass
class Fault:
    """What the fake answers instead of a page: a status (with headers), or raises ``error``."""

    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    error: Exception | None = None


def response(status: int, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer.reason = "Fake"
    answer._content = json.dumps(body).encode() if body is not None else b""
    answer.headers.update(headers or {})
    return answer


#: What the fake answers to ``GET <base>/metadata`` by default: not a CapabilityStatement, so the
#: client knows nothing of the EHR and assumes everything (``Capabilities.unknown``).
NO_STATEMENT: dict[str, Any] = {"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "not-supported", "diagnostics": "no CapabilityStatement here"}]}


class FakeEhrSession(requests.Session):
    """Serves ``resources`` to searches of ``base``: ``subject`` or ``patient`` and ``identifier``
    (``system|`` or ``system|value``) are honoured, ``_count`` sets the page size, each page links to the
    next in ``link_form`` (``next_link`` overrides it); ``GET <base>/metadata`` answers ``statement``.
    ``faults`` maps a request number (1-based, the metadata read counted) to a ``Fault``."""

    def __init__(self, resources: list[dict[str, Any]] | None = None, *, base: str = BASE,
                 link_form: str = "absolute", next_link: Callable[[str, str], str] | None = None,
                 last_updated: str | None = LAST_UPDATED, date: str | None = DATE,
                 faults: dict[int, Fault] | None = None, statement: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.statement = statement if statement is not None else NO_STATEMENT
        self.resources = list(resources or [])
        self.base = base
        self.link_form = link_form
        self.next_link = next_link
        self.last_updated = last_updated
        self.date = date
        self.faults = dict(faults or {})
        self.sent: list[Sent] = []
        self._searches: dict[str, tuple[str, list[dict[str, Any]], int]] = {}

    def request(self, method: str | bytes, url: str | bytes, params: Any = None, headers: Any = None,
                **kwargs: Any) -> requests.Response:
        prepared = requests.Request(str(method), str(url), params=params).prepare()
        full = str(prepared.url)
        self.sent.append(Sent(str(method), full, dict(headers or {})))
        fault = self.faults.get(len(self.sent))
        if fault is not None:
            if fault.error is not None:
                raise fault.error
            outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "throttled"}]}
            return response(fault.status, outcome, fault.headers)
        parts = urlsplit(full)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if "_page" in query:
            return self._page(query["_page"], int(query["_offset"]))
        kind = parts.path.rsplit("/", 1)[-1]
        if kind == "metadata":
            return response(200, self.statement, {"Content-Type": "application/fhir+json"})
        return self._search(kind, query)

    def _search(self, kind: str, query: dict[str, str]) -> requests.Response:
        system, _, value = query.get("identifier", "").partition("|")  # "system|" matches any value
        found = [r for r in self.resources if r.get("resourceType") == kind
                 and (not system or any(i.get("system") == system and (not value or i.get("value") == value)
                                        for i in identifiers(r)))
                 and all((r.get("subject") or {}).get("reference") == query[p] for p in ("subject", "patient") if p in query)]
        token = uuid.uuid4().hex
        self._searches[token] = (kind, found, int(query.get("_count", "10")))
        return self._page(token, 0)

    def _page(self, token: str, offset: int) -> requests.Response:
        kind, found, size = self._searches[token]
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(found),
                                  "entry": [{"fullUrl": f"{self.base}/{kind}/{r['id']}", "resource": r,
                                             "search": {"mode": "match"}} for r in found[offset:offset + size]]}
        if self.last_updated is not None:
            bundle["meta"] = {"lastUpdated": self.last_updated}
        if offset + size < len(found):
            paging = f"_page={token}&_offset={offset + size}"
            link = self.next_link(kind, paging) if self.next_link else LINK_FORMS[self.link_form](self.base, kind, paging)
            bundle["link"] = [{"relation": "next", "url": link}]
        headers = {"Content-Type": "application/fhir+json"}
        if self.date is not None:
            headers["Date"] = self.date
        return response(200, bundle, headers)


def stored(path: Path, first_id: int, patient: str = PATIENT) -> list[dict[str, Any]]:
    """The resources of a transaction Bundle as the EHR would hold them: with ids, of ``patient``."""
    bundle = json.loads(path.read_text(encoding="utf-8"))
    found = []
    for n, entry in enumerate(bundle["entry"], start=first_id):
        resource = copy.deepcopy(entry["resource"])
        resource["id"] = str(n)
        resource["subject"] = {"reference": patient}
        found.append(resource)
    return found


MONTH = stored(EXAMPLES / "diary" / "month.bundle.json", 1)
RESCUE = stored(EXAMPLES / "bundles" / "ed-migraine-rescue.bundle.json", 100)
VALPROATE = stored(EXAMPLES / "bundles" / "valproate-weight-based.bundle.json", 200)


def observations(count: int, system: str, patient: str = "Patient/1") -> list[dict[str, Any]]:
    """``count`` bare Observations of ``patient`` carrying an identifier of ``system``, ids 1 to count."""
    return [{"resourceType": "Observation", "id": str(n), "status": "final", "code": {"text": "x"},
             "subject": {"reference": patient}, "identifier": [{"system": system, "value": f"e{n}"}]}
            for n in range(1, count + 1)]
