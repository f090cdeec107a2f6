"""The SMART on FHIR app: a clinician launches it from a patient's chart in the EHR (or stands it up
alone against the first trusted EHR), and sees that patient's headache diary month by month.

    GET /smart/launch?iss=…&launch=…   EHR launch (``iss`` and ``launch``), or standalone (neither)
    GET /smart/callback?code=…&state=…  the EHR's authorization answer: token, then the session
    GET /smart/s/<session>/             the latest month of the diary
    GET /smart/s/<session>/<YYYY-MM>    a month

These are browser routes: no bearer token of this service (``api.security`` exempts exactly
these endpoints); what protects them is the EHR's authorization of the clinician. The launch is
kept under its OAuth ``state`` and the clinician's session under an opaque id in the page path,
both server-side (``ehr.smart_sessions``): no cookie, so it works in an EHR's iframe where
third-party cookies are blocked. Every read goes to the EHR with the clinician's token. The pages
run no script; errors are pages naming what failed, never a stack trace. See docs/smart-app.md.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from fhir_migraine import operations
from fhir_migraine.api import security
from fhir_migraine.api.services import Services, services_of
from fhir_migraine.clinical.months import Month
from fhir_migraine.config import SMART_SCOPES, SmartSettings
from fhir_migraine.ehr import smart
from fhir_migraine.ehr.gateway import check_ehr_url
from fhir_migraine.ehr.smart_sessions import Launch, Session, SmartSessions
from fhir_migraine.errors import ConfigError, EhrAuthError, EhrError, FhirMigraineError, InputError, LaunchRefused, NotFound, Problem
from fhir_migraine.report import app_view, render

log = logging.getLogger(__name__)
blueprint = Blueprint("smart", __name__, url_prefix="/smart")
#: The endpoints a browser reaches without this service's bearer token (``api.security``).
BROWSER_ENDPOINTS = security.SMART_BROWSER_ENDPOINTS
#: What the app's pages may load: their own inline styles and SVG, nothing else; no script, no form.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def _settings() -> SmartSettings:
    found = services_of_app().settings.smart
    if not found.enabled:
        raise NotFound("The SMART app is not configured on this service (FHIR_MIGRAINE_SMART_CLIENT_ID, "
                       "FHIR_MIGRAINE_SMART_ISSUERS, FHIR_MIGRAINE_PUBLIC_URL).")
    return found


def services_of_app() -> Services:
    return services_of(current_app)


def _sessions(settings: SmartSettings) -> SmartSessions:
    found = services_of_app()
    if found.smart is None:
        found.smart = SmartSessions(found.settings.database, ttl=settings.session_ttl)
    return found.smart


def redirect_uri(settings: SmartSettings) -> str:
    """The redirect URL an EHR administrator registers for the app."""
    return f"{settings.public_url}/smart/callback"


def _trusted(settings: SmartSettings, iss: str) -> str:
    wanted = iss.strip().rstrip("/")
    if wanted not in settings.issuers:
        raise LaunchRefused.of([Problem("$.iss", "this EHR is not one the service is configured to trust "
                                                 "(FHIR_MIGRAINE_SMART_ISSUERS)")], "launch")
    try:
        check_ehr_url(wanted, allow_http=settings.allow_http, what="the EHR's FHIR base URL (iss)")
    except ConfigError as exc:
        raise LaunchRefused.of([Problem("$.iss", exc.message)], "launch") from None
    return wanted


@blueprint.get("/launch")
def launch() -> WerkzeugResponse:
    """Start a launch: EHR launch with ``iss`` and ``launch``, standalone with neither (the first
    trusted EHR); redirect to the EHR's authorization endpoint."""
    settings = _settings()
    iss, context = request.args.get("iss"), request.args.get("launch")
    if context is not None and not context.strip():
        raise LaunchRefused.of([Problem("$.launch", "is empty")], "launch")
    if context is not None and iss is None:
        raise LaunchRefused.of([Problem("$.iss", "an EHR launch names its FHIR base URL (iss) beside launch")], "launch")
    base = _trusted(settings, iss) if iss is not None else settings.issuers[0]
    endpoints = smart.discover(base, timeout=10.0)
    state, verifier = smart.new_state(), smart.new_verifier()
    _sessions(settings).begin(state, Launch(base, verifier))
    scope = ("launch" if context is not None else "launch/patient", *SMART_SCOPES)
    url = smart.authorization_url(endpoints, client_id=str(settings.client_id), redirect_uri=redirect_uri(settings),
                                  scope=scope, iss=base, state=state, verifier=verifier, launch=context)
    return redirect(url, 302)


@blueprint.get("/callback")
def callback() -> Response:
    """The EHR's answer: trade the code for the clinician's token, open the session, and show the
    loading page that goes on to the diary."""
    settings = _settings()
    args = request.args
    state = args.get("state")
    if not state:
        raise LaunchRefused.of([Problem("$.state", "the EHR's answer carries no state")], "launch")
    started = _sessions(settings).take(state)
    if started is None:
        raise LaunchRefused.of([Problem("$.state", "no launch of this service is waiting for this state (unknown, used "
                                                   "already, or expired): launch the app again from the EHR")], "launch")
    if args.get("error"):
        raise LaunchRefused.of([Problem("$.error", f"the EHR did not authorize the app ({args['error'][:100]})")], "launch")
    code = args.get("code")
    if not code:
        raise LaunchRefused.of([Problem("$.code", "the EHR's answer carries no authorization code")], "launch")
    endpoints = smart.discover(started.iss, timeout=10.0)
    token = smart.exchange(endpoints, client_id=str(settings.client_id), redirect_uri=redirect_uri(settings), code=code,
                           verifier=started.verifier)
    lifetime = token.get("expires_in")
    seconds = float(lifetime) if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool) else settings.session_ttl
    session_id = _sessions(settings).open(started.iss, str(token["patient"]), str(token["access_token"]), seconds)
    page = render.state_html("loading", "Opening the diary", "Reading the patient's headache diary from the EHR…",
                             next_url=f"/smart/s/{session_id}/")
    return _page(page)


def _session(session_id: str) -> Session:
    settings = _settings()
    found = _sessions(settings).get(session_id)
    if found is None:
        raise LaunchRefused.of([Problem("$.session", "this session of the app has ended or never existed: launch the "
                                                     "app again from the patient's chart")], "request")
    return found


@blueprint.get("/s/<session_id>/")
def latest(session_id: str) -> Response:
    """The latest month of the diary (this month when the diary runs into it)."""
    return _month_page(session_id, None)


@blueprint.get("/s/<session_id>/<month>")
def month(session_id: str, month: str) -> Response:
    return _month_page(session_id, month)


def _month_page(session_id: str, month: str | None) -> Response:
    session = _session(session_id)
    today = datetime.now(UTC).date()
    if month is not None:
        shown_month = _month(month, today)  # a bad month is refused before the EHR is asked
    chart = smart.read_chart(session.iss, session.token, session.patient)
    base = f"/smart/s/{session_id}"
    if not chart.entries:
        this = Month(today.year, today.month)
        page = render.state_html("empty", "No headache diary yet",
                                 "The EHR holds no headache diary of this project for this patient.",
                                 advice="Entries appear here once the patient's diary app or the clinic sends them.",
                                 links={"latest": f"{base}/{this}"})
        return _page(page)
    latest_day = max(date.fromisoformat(e.date) for e in chart.entries)
    latest_month = Month(latest_day.year, latest_day.month) if latest_day <= today else Month(today.year, today.month)
    if month is None:
        shown_month = latest_month
    view = operations.report_view(chart.entries, chart.requests, str(shown_month))
    following = Month(shown_month.year + shown_month.month // 12, shown_month.month % 12 + 1)
    links = {"previous": f"{base}/{shown_month.previous()}", "previous_name": _name(shown_month.previous()),
             "next": f"{base}/{following}" if date(following.year, following.month, 1) <= today else None,
             "next_name": _name(following), "latest": f"{base}/{latest_month}"}
    page = render.app_html(view, trend=app_view.trend(chart.entries, shown_month),
                           attacks=app_view.attacks(chart.entries, view), links=links, left_out=chart.left_out)
    return _page(page)


def _month(text: str, today: date) -> Month:
    from fhir_migraine.report.month import month_of

    return month_of(text, today)


def _name(month: Month) -> str:
    return date(month.year, month.month, 1).strftime("%B %Y")


def _page(html: str, status: int = 200) -> Response:
    answer = Response(html, status=status, mimetype="text/html")
    answer.headers["Content-Security-Policy"] = CSP + _frame_ancestors()
    answer.headers["Referrer-Policy"] = "no-referrer"  # the session id is in the path
    return answer


def _frame_ancestors() -> str:
    """The pages the app may be framed by: this service's, and the configured origins (by default
    those of the trusted issuers)."""
    smart_settings = services_of_app().settings.smart
    origins = smart_settings.frame_ancestors or sorted({f"{urlsplit(i).scheme}://{urlsplit(i).netloc}" for i in smart_settings.issuers})
    return "; frame-ancestors 'self' " + " ".join(origins)


def _error_page(exc: FhirMigraineError) -> Response:
    """Every error of the app as a page: what failed and what to do, with the problem's location."""
    problems = [str(p) for p in exc.problems]
    advice = None
    if isinstance(exc, EhrAuthError) and exc.status != 403:
        title, advice = "The EHR refused the app's access", "Launch the app again from the patient's chart."
    elif isinstance(exc, EhrError) and exc.status == 403:
        title = "The EHR refused a request"
        advice = "The EHR does not let the app read this for the patient; ask the EHR's administrators about its scopes."
    elif isinstance(exc, EhrError):
        title = "The EHR refused a request"
        advice = "The diary cannot be shown until the EHR answers; try again, or ask the EHR's administrators."
    elif isinstance(exc, LaunchRefused):
        title, advice = "The app cannot open", "Launch the app again from the patient's chart in the EHR."
    elif isinstance(exc, InputError):
        title = "This month cannot be shown"
    elif isinstance(exc, NotFound):
        title = "Not available"
    else:
        title = exc.title
    status = exc.http_status if exc.http_status < 500 or isinstance(exc, EhrError) else 500
    message = exc.message if not isinstance(exc, EhrError) else f"Reading from the EHR failed: {exc.message}."
    log.info("smart app error", extra={"error_type": type(exc).__name__, "status": status})
    return _page(render.state_html("error", title, message, status=status, problems=problems, advice=advice), status)


def _unexpected(exc: Exception) -> Any:
    if isinstance(exc, HTTPException):
        return exc  # werkzeug's own answer (a 405 of a POST, say)
    # The exception type only: its text may carry patient data.
    log.error("unhandled error in the SMART app", extra={"error_type": type(exc).__name__})
    page = render.state_html("error", "Something went wrong", "An unexpected error occurred; it has been logged.", status=500)
    return _page(page, 500)


blueprint.register_error_handler(FhirMigraineError, _error_page)
blueprint.register_error_handler(Exception, _unexpected)
