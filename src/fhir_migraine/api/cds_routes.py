"""The CDS Hooks 2.0 services (https://cds-hooks.hl7.org/2.0/):

    GET  /cds-services                  discovery: the services and their prefetch templates
    POST /cds-services/<id>             a call: the cards of the service (``cds.services.answer``)
    POST /cds-services/<id>/feedback    which cards were accepted or overridden

Calls and feedback authenticate with the EHR's JWT (``api.cds_auth``), not with this service's
bearer token (``api.security`` exempts exactly these endpoints); discovery, which names no patient,
is open. CORS headers go on every answer of these routes, preflights included, so a browser-based
EHR can call them. The rules decide the cards; this module checks the body, completes the
prefetch from the EHR's ``fhirServer`` with the ``fhirAuthorization`` it gave (``ehr.cds_fetch``),
and logs nothing of the patient. See docs/cds-hooks.md.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, request

from fhir_migraine.api import security
from fhir_migraine.api.cds_auth import CdsAuthenticator, CdsClient, JwtRefused, ReplayStore
from fhir_migraine.api.cds_feedback import FeedbackStore, parse
from fhir_migraine.api.errors import problem
from fhir_migraine.api.headers import json_answer
from fhir_migraine.api.services import Services, services_of
from fhir_migraine.cds import services as cds
from fhir_migraine.documents import parse_json
from fhir_migraine.ehr import cds_fetch
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.ehr.gateway import check_ehr_url
from fhir_migraine.errors import ConfigError, HookRefused, Problem, UnreadableInput

log = logging.getLogger(__name__)
blueprint = Blueprint("cds", __name__, url_prefix="/cds-services")
#: The endpoints exempt from this service's bearer token (``api.security``).
ENDPOINTS = security.CDS_ENDPOINTS
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE = "600"


def _services() -> Services:
    return services_of(current_app)


@blueprint.after_request
def _cors(response: Response) -> Response:
    """CORS for browser-based CDS clients: the origin allowed (``*`` by default: the JWT, not a
    cookie, is what authenticates, so no credentials mode is offered), and the preflight's answers."""
    origin = request.headers.get("Origin")
    allowed = _services().settings.cds.allowed_origins
    if origin is None or ("*" not in allowed and origin not in allowed):
        return response
    response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
    if "*" not in allowed:
        response.vary.add("Origin")
    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
    response.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return response


def _unauthorized(reason: str) -> Response:
    answer = problem(401, "Unauthorized", f"The CDS client's JWT is refused: {reason}.")
    quoted = reason.replace('"', "'")
    answer.headers["WWW-Authenticate"] = f'Bearer realm="cds-services", error="invalid_token", error_description="{quoted}"'
    return answer


def _client(service_id: str, *, feedback: bool = False) -> CdsClient | Response:
    """The EHR that signed this call's JWT, or the 401 answer saying why it is refused."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized("this endpoint needs 'Authorization: Bearer <JWT>' signed by the EHR")
    authenticator = _services().cds_auth
    assert authenticator is not None  # made by create_app
    try:
        return authenticator.client(token.strip(), service_id, feedback=feedback)
    except JwtRefused as exc:
        log.info("cds jwt refused", extra={"kind": service_id})
        return _unauthorized(str(exc))


@blueprint.get("")
def discovery() -> Response:
    return json_answer({"services": cds.SERVICES})


def _request_body(hook: str) -> dict[str, Any]:
    """The call's body, checked against the parts of CDS Hooks 2.0 every hook shares."""
    data = request.get_data(cache=False)
    if not data:
        raise UnreadableInput.of([Problem("$", "the request body is empty")], "CDS Hooks request")
    body = parse_json(data, "CDS Hooks request")
    if not isinstance(body, dict):
        raise HookRefused.of([Problem("$", "must be a CDS Hooks request object")], "CDS Hooks request")
    problems: list[Problem] = []
    if body.get("hook") != hook:
        problems.append(Problem("$.hook", f"must be {hook!r}, the hook of this service"))
    if not isinstance(body.get("hookInstance"), str) or not body["hookInstance"].strip():
        problems.append(Problem("$.hookInstance", "must be a non-empty string (a UUID)"))
    if not isinstance(body.get("context"), dict):
        problems.append(Problem("$.context", "must be an object"))
    problems += _fhir_access_problems(body)
    prefetch = body.get("prefetch", {})
    if not isinstance(prefetch, dict):
        problems.append(Problem("$.prefetch", "must be an object"))
    else:
        problems += [Problem(f"$.prefetch.{key}", "must be a FHIR resource or Bundle (an object with a resourceType)")
                     for key, value in prefetch.items()
                     if value is not None and not (isinstance(value, dict) and isinstance(value.get("resourceType"), str))]
    if problems:
        raise HookRefused.of(problems, "CDS Hooks request")
    return body


def _fhir_access_problems(body: dict[str, Any]) -> list[Problem]:
    server, authorization = body.get("fhirServer"), body.get("fhirAuthorization")
    problems: list[Problem] = []
    if server is not None:
        if not isinstance(server, str):
            problems.append(Problem("$.fhirServer", "must be the EHR's FHIR base URL"))
        else:
            try:
                check_ehr_url(server, allow_http=_services().settings.cds.allow_http, what="fhirServer")
            except ConfigError:
                # The access token must not cross a network in clear text (FHIR_MIGRAINE_CDS_ALLOW_HTTP for test EHRs).
                problems.append(Problem("$.fhirServer", "must be an https URL (or http to this machine) with a host"))
    if authorization is not None:
        if server is None:
            problems.append(Problem("$.fhirAuthorization", "needs a fhirServer (CDS Hooks 2.0, cds-r-1)"))
        token = authorization.get("access_token") if isinstance(authorization, dict) else None
        if not isinstance(token, str) or not token.strip() or any(c.isspace() for c in token.strip()):
            problems.append(Problem("$.fhirAuthorization.access_token", "must be the access token (a string)"))
    return problems


def _fetcher(body: dict[str, Any]) -> Any:
    """A maker of clients of the call's ``fhirServer`` with its access token, or None without one."""
    server = body.get("fhirServer")
    if not isinstance(server, str):
        return None
    token = (body.get("fhirAuthorization") or {}).get("access_token")
    timeout = _services().settings.cds.fetch_timeout

    def make() -> FhirClient:
        return cds_fetch.client_for(server, token.strip() if isinstance(token, str) else None, timeout=timeout)

    return make


@blueprint.post("/<service_id>")
def call(service_id: str) -> Response:
    entry = cds.service(service_id)  # NotFound (404) first: the services are public in discovery
    caller = _client(service_id)
    if isinstance(caller, Response):
        return caller
    body = _request_body(entry["hook"])
    now = datetime.now(UTC)
    prefetch = cds_fetch.complete(entry.get("prefetch", {}), body.get("prefetch") or {}, body["context"],
                                  client=_fetcher(body), today=now.date())
    found = _services()
    smart = found.settings.smart
    answer = cds.answer(service_id, body, prefetch, now=now, protocols=found.protocols.get,
                        protocol_ids=[s["id"] for s in found.protocols.summaries() if s.get("status") == "active"],
                        app_url=f"{smart.public_url}/smart/launch" if smart.enabled else None)
    missing = sum(1 for value in prefetch.values() if value is None)
    log.info("cds call", extra={"kind": service_id, "count": len(answer.get("cards", [])), "prefetch_missing": missing})
    return json_answer(answer)


@blueprint.post("/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    cds.service(service_id)
    caller = _client(service_id, feedback=True)
    if isinstance(caller, Response):
        return caller
    data = request.get_data(cache=False)
    if not data:
        raise UnreadableInput.of([Problem("$", "the request body is empty")], "CDS feedback")
    items = parse(parse_json(data, "CDS feedback"))
    store = _services().cds_feedback
    assert store is not None  # made by create_app
    store.record(service_id, items, client=caller.iss)
    log.info("cds feedback", extra={"kind": service_id, "count": len(items)})
    return json_answer({"recorded": len(items)})


def open_stores(found: Services) -> None:
    """Open the CDS stores of the app: the JWT replay store and the feedback."""
    found.cds_auth = CdsAuthenticator(found.settings.cds, ReplayStore(found.settings.database))
    found.cds_feedback = FeedbackStore(found.settings.database)
