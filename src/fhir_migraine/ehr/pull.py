"""Pull a patient's resources of this project back from the EHR (every page of each search), and
the instant by the EHR's clock that the next cursor pull starts from."""

from __future__ import annotations

import email.utils
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_migraine.ehr.capabilities import Capabilities
from fhir_migraine.ehr.interface import Page, Pages
from fhir_migraine.errors import EhrUnavailable, EhrUnsupported, InputError, Problem
from fhir_migraine.identifiers import DIARY_SYSTEM, ORDER_STEP_SYSTEM, ORDER_SYSTEM, ORDER_WEIGHT_SYSTEM, REPORT_SYSTEM
from fhir_migraine.inputs.orders import parse_instant
from fhir_migraine.mapping.fhir import identifiers
from fhir_migraine.store import open_store

log = logging.getLogger(__name__)

# Each search is for one identifier system of ours, asked as "system|" (any value in it) where the
# EHR offers identifier search on the type, and checked on the client in any case.
SEARCHES = (
    ("MedicationRequest", ORDER_STEP_SYSTEM),
    ("RequestGroup", ORDER_SYSTEM),
    ("Observation", ORDER_WEIGHT_SYSTEM),
    ("Observation", DIARY_SYSTEM),
    ("MedicationStatement", DIARY_SYSTEM),  # the acute medications of diary entries
    ("QuestionnaireResponse", DIARY_SYSTEM),  # the MIDAS and HIT-6 answers of diary entries
    ("DocumentReference", REPORT_SYSTEM),  # the monthly reports filed in the chart
)
PAGE_SIZE = 200  # asked as _count; the client brings it down to FHIR_MIGRAINE_EHR_MAX_COUNT
_REFERENCE = re.compile(r"^(Patient/)?([A-Za-z0-9\-.]{1,64})$")


@dataclass(frozen=True)
class Search:
    """One search of a pull: what is asked of the EHR (``params``), and what is checked on the
    client because the EHR does not offer it as a parameter. Every resource kept carries an
    identifier of ``system`` whether or not ``identifier`` was asked; ``since``, when set, is the
    instant a resource's ``meta.lastUpdated`` must not be before (``_lastUpdated`` not offered)."""

    resource_type: str
    system: str
    params: dict[str, str]
    since: datetime | None = None


def patient_reference(text: str) -> str:
    """``Patient/123`` from ``Patient/123`` or ``123``; InputError otherwise."""
    match = _REFERENCE.match(text)
    if not match:
        raise InputError.of([Problem("$.patient", f"{text!r} is not a patient reference such as Patient/123")], "request")
    return f"Patient/{match.group(2)}"


def since_instant(since: str | None) -> datetime | None:
    """The instant ``since`` names (None for None); InputError naming ``$.since`` when it is not one."""
    if since is None:
        return None
    found = parse_instant(since)
    if found is None:
        raise InputError.of([Problem("$.since", "must be an instant such as 2026-11-01T00:00:00Z")], "request")
    return found


def plan(capabilities: Capabilities, reference: str, *, since: str | None = None,
         count: int | None = None) -> list[Search]:
    """The searches of a pull of ``reference``, with only the parameters the EHR's CapabilityStatement
    offers for each type: ``patient`` where offered, else ``subject`` (``subject`` when the statement
    could not be read, which allows everything); ``identifier=<system>|`` and ``_lastUpdated=ge<since>``
    where offered, else checked on the client. EhrUnsupported naming every type of ours the EHR
    cannot search by patient when it can search none of them (otherwise those it cannot are left out:
    ``unsearchable``); InputError when ``since`` is not an instant."""
    start = since_instant(since) if since else None
    params_of = {t: (capabilities.patient_param(t) if capabilities.known else "subject") for t, _ in SEARCHES}
    if all(param is None for param in params_of.values()):
        raise EhrUnsupported(f"the EHR's CapabilityStatement offers no search of {' or '.join(sorted(params_of))} by"
                             " patient or subject: a pull cannot ask for anything")
    searches = []
    for resource_type, system in SEARCHES:
        if params_of[resource_type] is None:
            continue  # named by ``unsearchable``
        params = {str(params_of[resource_type]): reference}
        if capabilities.searches(resource_type, "identifier"):
            params["identifier"] = f"{system}|"
        params["_count"] = str(count or PAGE_SIZE)
        on_client = None
        if since:
            if capabilities.searches(resource_type, "_lastUpdated"):
                params["_lastUpdated"] = f"ge{since}"
            else:
                on_client = start
        searches.append(Search(resource_type, system, params, on_client))
    return searches


def unsearchable(capabilities: Capabilities) -> list[str]:
    """The types of ours the EHR cannot search by patient (a pull leaves them out and says so)."""
    if not capabilities.known:
        return []
    return sorted({t for t, _ in SEARCHES if capabilities.patient_param(t) is None})


def left_out(types: list[str]) -> dict[str, Any]:
    """The searchset entry (``search.mode`` ``outcome``) that says which types a pull left out."""
    issue = {"severity": "warning", "code": "not-supported",
             "diagnostics": f"the EHR offers no search of {' or '.join(types)} by patient or subject: none was pulled"}
    return {"resource": {"resourceType": "OperationOutcome", "issue": [issue]}, "search": {"mode": "outcome"}}


def pull(pages: Pages, patient: str, *, since: str | None = None, count: int | None = None,
         capabilities: Capabilities | None = None, types: Collection[str] | None = None) -> dict[str, Any]:
    """A searchset Bundle of the patient's resources of this project, changed since ``since``, asked
    ``count`` (default ``PAGE_SIZE``) to a page, with the parameters ``capabilities`` offer (``plan``;
    None: everything is offered); the types the EHR cannot search by patient are left out, named by an
    OperationOutcome entry of ``search.mode`` ``outcome`` (``total`` counts the matches). Its
    ``meta.lastUpdated`` is the EHR's clock when the pull began (``ehr_clock`` of the first page),
    absent when the EHR told none.

    Where the EHR offers no ``_lastUpdated`` search, ``since`` is checked on each resource's
    ``meta.lastUpdated``, and a resource without one (or with one that is not an instant) is kept:
    the safe side, as a resource pulled twice is unmapped to the same order or entry again, while
    one left out would be missed by every later cursor pull.

    ``types``: only the searches of these resource types (a SMART app's token may read no others)."""
    reference = patient_reference(patient)
    caps = capabilities or Capabilities.unknown()
    searches = [s for s in plan(caps, reference, since=since, count=count) if types is None or s.resource_type in types]
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    started: datetime | None = None
    first = True
    for search in searches:
        for page in pages.pages(search.resource_type, search.params):
            if first:
                started, first = ehr_clock(page), False
            for entry in _matches(page.bundle, search.resource_type):
                resource = entry["resource"]
                # An EHR without (or ignoring) the identifier parameter answers with all the patient's
                # resources of the type: only those carrying an identifier of ours are kept.
                if not has_system(resource, search.system):
                    continue
                if search.since is not None and changed_before(resource, search.since):
                    continue
                key = f"{resource.get('resourceType')}/{resource.get('id')}"
                if key in seen:
                    continue
                seen.add(key)
                url = entry.get("fullUrl")
                entries.append({"fullUrl": url if isinstance(url, str) else key, "resource": resource,
                                "search": {"mode": "match"}})
    total = len(entries)
    if skipped := unsearchable(caps):
        entries.append(left_out(skipped))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": total, "entry": entries}
    if started is not None:
        bundle["meta"] = {"lastUpdated": instant_text(started)}
    else:
        log.warning("the EHR's first search page carried neither meta.lastUpdated nor a Date header")
    return bundle


def ehr_clock(page: Page) -> datetime | None:
    """When the EHR answered, by its own clock: the page's ``Bundle.meta.lastUpdated`` (for a
    searchset, when the search ran), else the answer's ``Date`` header; None when it gives neither."""
    meta = page.bundle.get("meta")
    stamp = meta.get("lastUpdated") if isinstance(meta, dict) else None
    found = parse_instant(stamp) if isinstance(stamp, str) else None
    if found is None and page.date:
        try:
            found = email.utils.parsedate_to_datetime(page.date)
        except (TypeError, ValueError):
            found = None
        if found is not None and found.tzinfo is None:
            found = None  # RFC 9110 dates are in GMT; one without a zone is not an HTTP-date
    return found.astimezone(UTC) if found is not None else None


def cursor_after(bundle: dict[str, Any], overlap: float) -> str | None:
    """The ``since`` of the next cursor pull: the EHR's clock when this pull began, less ``overlap``
    seconds (a write the EHR stamped just before the search but committed after it is not skipped);
    None when the EHR told no time (the cursor then stays where it was)."""
    meta = bundle.get("meta")
    stamp = parse_instant(meta.get("lastUpdated", "")) if isinstance(meta, dict) else None
    return instant_text(stamp - timedelta(seconds=overlap)) if stamp is not None else None


def instant_text(value: datetime) -> str:
    """A FHIR instant in UTC with milliseconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _matches(page: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    """The entries of the resources a searchset page matched; an ``OperationOutcome`` it carries
    (``search.mode`` ``outcome``, a warning about the search) is not one."""
    entries = page.get("entry", [])
    if page.get("resourceType") != "Bundle" or not isinstance(entries, list) \
            or not all(isinstance(e, dict) and isinstance(e.get("resource"), dict) for e in entries):
        raise EhrUnavailable(f"the EHR answered the {resource_type} search with something that is not a searchset Bundle")
    return [e for e in entries if not (isinstance(e.get("search"), dict) and e["search"].get("mode") == "outcome")]


def changed_before(resource: dict[str, Any], since: datetime) -> bool:
    """Whether the resource's ``meta.lastUpdated`` is an instant before ``since`` (False without one)."""
    meta = resource.get("meta")
    stamp = meta.get("lastUpdated") if isinstance(meta, dict) else None
    found = parse_instant(stamp) if isinstance(stamp, str) else None
    return found is not None and found < since


def has_system(resource: dict[str, Any], system: str) -> bool:
    return any(isinstance(i, dict) and i.get("system") == system for i in identifiers(resource))


class Cursors:
    """Per-patient pull cursors: the instant of the last pull, so the next fetches only changes."""

    def __init__(self, database: str) -> None:
        self._store = open_store(database, "CREATE TABLE IF NOT EXISTS pull_cursors (patient TEXT PRIMARY KEY, since TEXT NOT NULL);")

    def get(self, patient: str) -> str | None:
        row = self._store.one("SELECT since FROM pull_cursors WHERE patient = ?", (patient,))
        return str(row[0]) if row else None

    def set(self, patient: str, since: str) -> None:
        self._store.write(
            "INSERT INTO pull_cursors (patient, since) VALUES (?, ?) ON CONFLICT(patient) DO UPDATE SET since = excluded.since",
            (patient, since),
        )

