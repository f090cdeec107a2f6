"""What the outbox worker, the pull and the service need from an EHR, as protocols: the FHIR
client (``client.FhirClient``) provides them all, and a test double provides only what it is asked.
Also what the client needs from credentials (``Auth``; the kinds are in ``ehr.auth``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol

import requests

Resource = dict[str, Any]


class Auth(Protocol):
    """What the FHIR client needs from any kind of credentials."""

    def headers(self, session: requests.Session) -> dict[str, str]:
        """Headers to add to one FHIR request; may fetch or renew a token through ``session``."""
        ...

    def invalidate(self) -> None:
        """The EHR answered 401: forget any cached token, so the next ``headers`` fetches a new one."""
        ...


@dataclass(frozen=True)
class NoAuth:
    """No credentials at all (a local test server)."""

    def headers(self, session: requests.Session) -> dict[str, str]:
        return {}

    def invalidate(self) -> None:
        return None


class Transactions(Protocol):
    """Accepts transaction Bundles (what the outbox worker sends)."""

    def transaction(self, bundle: Resource) -> Resource:
        """POST a transaction Bundle; the transaction-response Bundle, or an ``EhrError`` (also when
        an entry of the answer is not 2xx, its ``entries`` then naming each entry's outcome)."""
        ...


@dataclass(frozen=True)
class Written:
    """What the EHR answered to one create, update or read: the status, the resource's id and
    version (from the body, else from ``Location`` / ``ETag``: a 201 may come with an empty body),
    and the resource when the body held it."""

    status: int
    id: str | None
    version: str | None = None
    resource: Resource | None = None

    @property
    def created(self) -> bool:
        """201: a new resource; 200 to a conditional create: one carrying the identifier existed."""
        return self.status == 201


class Writes(Protocol):
    """Single-resource interactions (the per-resource write strategy, amendments, cancellation)."""

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> Written:
        """POST the resource to its type (a conditional create with ``If-None-Exist``), or an EhrError."""
        ...

    def update(self, resource: Resource, *, if_match: str | None = None) -> Written:
        """PUT the resource (it carries its id) guarded by ``If-Match`` on its version, or an EhrError."""
        ...

    def read(self, resource_type: str, resource_id: str) -> Written:
        """GET one resource, or an EhrError (404/410: ``EhrRejected``)."""
        ...


class Searches(Protocol):
    """Answers searches (what a pull asks)."""

    def search(self, resource_type: str, params: dict[str, str]) -> Iterator[Resource]:
        """Every page (a searchset Bundle) of one search, or an ``EhrError``."""
        ...


class Deliveries(Transactions, Writes, Searches, Protocol):
    """Accepts transaction Bundles and single writes, and answers the searches that resolve subjects
    and find resources already written (what the outbox worker needs)."""

    base_url: str

    def metadata(self) -> Resource:
        """The CapabilityStatement, or an ``EhrError``."""
        ...


@dataclass(frozen=True)
class Page:
    """One page of a search: the searchset Bundle and the answer's ``Date`` header (the EHR's clock,
    RFC 9110 section 6.6.1), None when the EHR sent none."""

    bundle: Resource
    date: str | None = None


class Pages(Protocol):
    """Answers searches page by page, with each answer's date (what a pull asks; ``ehr.paging``)."""

    def pages(self, resource_type: str, params: dict[str, str]) -> Iterator[Page]:
        """Every page of one search, or an ``EhrError``."""
        ...


@dataclass(frozen=True)
class ExportStatus:
    """One answer of a Bulk Data status URL: the manifest once the export is complete, else how
    long the EHR asks to wait (``Retry-After``) and its ``X-Progress`` text."""

    manifest: Resource | None
    retry_after: float | None = None
    progress: str | None = None


class Exports(Protocol):
    """FHIR Bulk Data's asynchronous export (what a group's pull asks; ``ehr.bulk``)."""

    def kick_off(self, path: str, params: dict[str, str]) -> str:
        """Start an export of ``[base]/{path}``; its status URL, or an ``EhrError``."""
        ...

    def export_status(self, status_url: str) -> ExportStatus:
        """The export's status, asked once, or an ``EhrError``."""
        ...

    def delete_export(self, status_url: str) -> None:
        """Tell the EHR the export may go, or an ``EhrError``."""
        ...

    def download(self, url: str, out: IO[bytes], *, authorized: bool, limit: int) -> int:
        """Stream one exported file into ``out``; its size, or an ``EhrError``."""
        ...


class Ehr(Transactions, Writes, Searches, Exports, Protocol):
    """A whole EHR: transactions, searches, one page by its URL (what ``ehr.paging`` follows links
    with), its CapabilityStatement (what readiness checks) and Bulk Data exports."""

    base_url: str

    def get_page(self, url: str, params: dict[str, str] | None = None) -> Page:
        """One page from one GET of ``url``, or an ``EhrError`` (an ``EhrRejected`` for a URL of an
        origin the credentials may not be sent to)."""
        ...

    def metadata(self) -> Resource:
        """The CapabilityStatement, or an ``EhrError``."""
        ...
