"""Prefetch for the CDS Hooks services: rendering a service's prefetch templates with the call's
context, and fetching what the EHR did not send from its ``fhirServer`` with the access token it
gave in ``fhirAuthorization`` (CDS Hooks 2.0, "Prefetch" and "FHIR Resource Access"); never with
this service's own EHR credentials.

Tokens (https://cds-hooks.hl7.org/2.0/#prefetch-tokens): ``{{context.<field>}}`` for a string
field of the context; ``{{userPractitionerId}}``, ``{{userPractitionerRoleId}}``,
``{{userPatientId}}`` and ``{{userRelatedPersonId}}`` from ``context.userId`` when it names a
resource of that type; and, for date-bounded searches, ``{{today}}`` and ``{{today-N}}`` (N days
before today, ``YYYY-MM-DD``). A template whose token has no value is not queried: its key is None,
and the rules that need it answer that they could not check.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from fhir_migraine.ehr.auth import BearerToken
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.errors import ConfigError, EhrError

log = logging.getLogger(__name__)

TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.+-]+)\s*\}\}")
USER_TOKENS = {"userPractitionerId": "Practitioner", "userPractitionerRoleId": "PractitionerRole",
               "userPatientId": "Patient", "userRelatedPersonId": "RelatedPerson"}
TODAY = re.compile(r"today(?:-(\d{1,4}))?")
#: At most this many pages of one search are read (a year of diary is a few pages of 200).
MAX_PAGES = 20
Fetched = dict[str, Any] | None


def _value(name: str, context: Mapping[str, Any], today: date) -> str | None:
    if name.startswith("context."):
        found = context.get(name.removeprefix("context."))
        return found if isinstance(found, str) and found else None
    if name in USER_TOKENS:
        kind, _, ident = str(context.get("userId") or "").partition("/")
        return ident if kind == USER_TOKENS[name] and ident else None
    day = TODAY.fullmatch(name)
    if day:
        return (today - timedelta(days=int(day.group(1) or 0))).isoformat()
    return None


def render(template: str, context: Mapping[str, Any], *, today: date) -> str | None:
    """The query ``template`` asks for this call's context, its values URL-encoded; None when one of
    its tokens has no value (an unknown token, a context field the call does not carry)."""
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        found = _value(match.group(1), context, today)
        if found is None:
            missing = True
            return ""
        return quote(found, safe="")

    rendered = TOKEN.sub(fill, template)
    return None if missing else rendered


def client_for(fhir_server: str, access_token: str | None, *, timeout: float) -> FhirClient:
    """A client of the EHR's ``fhirServer`` holding only the access token the EHR gave for this call."""
    auth = BearerToken(access_token) if access_token else None
    return FhirClient(fhir_server, auth=auth, timeout=timeout, connect_timeout=min(timeout, 5.0))


def fetch(client: FhirClient, query: str) -> dict[str, Any]:
    """The resource a read (``Type/id``) or the searchset Bundle a search (``Type?…``) answers, a
    search's pages (``next`` links) gathered into one Bundle; an ``EhrError`` otherwise."""
    first = client.get_page(f"{client.base_url}/{query.lstrip('/')}").bundle
    if first.get("resourceType") != "Bundle":
        return first
    entries = list(first.get("entry") or [])
    page, pages = first, 1
    while (link := _next(page)) is not None and pages < MAX_PAGES:
        page = client.get_page(link).bundle
        entries.extend(page.get("entry") or [])
        pages += 1
    gathered = {k: v for k, v in first.items() if k not in ("entry", "link")}
    return {**gathered, "entry": entries} if entries else gathered


def _next(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def complete(templates: Mapping[str, str], given: Mapping[str, Any], context: Mapping[str, Any], *,
             client: Callable[[], FhirClient] | None, today: date) -> dict[str, Fetched]:
    """Every prefetch key of a service: what the EHR sent, else what ``client`` (None: no
    ``fhirServer``) fetched, else None. The missing keys are fetched at once, each in its thread;
    a query the EHR does not answer leaves its key None (logged by key and error type only)."""
    found: dict[str, Fetched] = {key: given[key] for key in templates if given.get(key) is not None}
    queries = {key: render(template, context, today=today) for key, template in templates.items() if key not in found}
    wanted = {key: query for key, query in queries.items() if query is not None}
    found.update({key: None for key in queries if key not in wanted})
    if not wanted or client is None:
        return {**found, **{key: None for key in wanted}}
    make = client
    with ThreadPoolExecutor(max_workers=min(len(wanted), 4)) as pool:
        # A client (and its requests session) per query: a session is not shared between threads.
        futures = {key: pool.submit(lambda q: fetch(make(), q), query) for key, query in wanted.items()}
        for key, future in futures.items():
            try:
                found[key] = future.result()
            except (EhrError, ConfigError) as exc:
                log.warning("prefetch not fetched", extra={"kind": key, "error_type": type(exc).__name__})
                found[key] = None
    return found
