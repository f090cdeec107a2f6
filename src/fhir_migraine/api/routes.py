"""Endpoints: parse the request, call the shared operations, serialize the answer."""

from __future__ import annotations

import json as jsonlib
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, g, request

from fhir_migraine import operations
from fhir_migraine.api.headers import json_answer
from fhir_migraine.api.openapi import openapi
from fhir_migraine.api.services import Services, services_of
from fhir_migraine.documents import parse_json
from fhir_migraine.ehr.outbox import STATES
from fhir_migraine.errors import InputError, NotFound, Problem, TooLarge, UnreadableInput
from fhir_migraine.inputs import protocols
from fhir_migraine.inputs.diary_files import Located

if TYPE_CHECKING:
    from fhir_migraine.ehr.gateway import EhrGateway

FHIR_JSON = "application/fhir+json"
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
blueprint = Blueprint("fhir_migraine", __name__)


def services() -> Services:
    return services_of(current_app)


def _body(what: str) -> Any:
    data = request.get_data(cache=False)
    if not data:
        raise UnreadableInput.of([Problem("$", "the request body is empty")], what)
    return parse_json(data, what)


def _accept(kind: str, bundle: dict[str, Any], warnings: dict[str, Any] | None = None) -> Response:
    """Queue the Bundle for the EHR (202 with the outbox id), or answer it (201) without an EHR.

    ``warnings`` (an OperationOutcome: findings that do not stop the order or diary) go under
    ``warnings`` of the 202 answer. The 201 answer is always the bare Bundle, so a client never
    meets two shapes of one answer: an order's DetectedIssues hold its findings, and a diary's
    warnings go in the ``X-Warnings`` header (``_warnings_header``)."""
    gateway = services().gateway
    if gateway is None:
        answer = json_answer(bundle, 201, FHIR_JSON)
        if warnings is not None and kind == "diary":
            answer.headers["X-Warnings"] = _warnings_header(warnings)
        return answer
    item_id = gateway.queue(bundle, kind=kind, checked=True)  # the mapping operations validated it
    body: dict[str, Any] = {"outbox_id": item_id, "state": "pending", "bundle": bundle}
    if warnings is not None:
        body["warnings"] = warnings
    answer = json_answer(body, 202)
    answer.headers["Location"] = f"/outbox/{item_id}"
    return answer


#: The largest X-Warnings header: servers and proxies commonly refuse headers past 8 KiB.
WARNINGS_HEADER_BYTES = 4096


def _warnings_header(outcome: dict[str, Any]) -> str:
    """The warnings as compact JSON ``[{"path", "message"}, ...]``, as many as fit, then
    ``{"more": n}`` for those left out (ASCII only: a header carries no other characters)."""
    items = [{"path": i["expression"][0], "message": i["diagnostics"]} for i in outcome["issue"]]
    for count in range(len(items), -1, -1):
        shown: list[dict[str, Any]] = [*items[:count], *([{"more": len(items) - count}] if count < len(items) else [])]
        text = jsonlib.dumps(shown, ensure_ascii=True, separators=(",", ":"))
        if len(text) <= WARNINGS_HEADER_BYTES:
            return text
    return jsonlib.dumps([{"more": len(items)}])


def _ehr() -> EhrGateway:
    gateway = services().gateway
    if gateway is None:
        raise NotFound("No EHR is configured (FHIR_MIGRAINE_EHR_URL).")
    return gateway


@blueprint.get("/health")
def health() -> Response:
    return json_answer({"status": "ok"})


@blueprint.get("/ready")
def ready() -> Response:
    """Ready when the database answers; reports the outbox (counts per state, among them the dead
    items, and how long the oldest undelivered item has waited) and whether the EHR answers."""
    found = services()
    body: dict[str, Any] = {"status": "ready", "protocols": sum(1 for _ in found.protocols.summaries())}
    if found.gateway is not None:
        body["outbox"] = found.gateway.outbox.readiness()
        body["ehr"] = found.gateway.ehr_state()
    else:
        body["ehr"] = {"configured": False}
    return json_answer(body)


@blueprint.get("/openapi.json")
def openapi_document() -> Response:
    return json_answer(openapi())


@blueprint.get("/protocols")
def list_protocols() -> Response:
    return json_answer({"protocols": list(services().protocols.summaries())})


@blueprint.get("/protocols/<protocol_id>")
def get_protocol(protocol_id: str) -> Response:
    """The current protocol, or with ``?version=`` the one an earlier order names."""
    return json_answer(services().protocols.require(protocol_id, request.args.get("version")).document)


@blueprint.get("/protocols/<protocol_id>/history")
def protocol_history(protocol_id: str) -> Response:
    """Every recorded change: version, content hash, the hash it replaced, who and when."""
    return json_answer({"id": protocol_id, "changes": services().protocols.history(protocol_id)})


@blueprint.put("/protocols/<protocol_id>")
def put_protocol(protocol_id: str) -> Response:
    data = request.get_data(cache=False)
    if request.mimetype in ("application/yaml", "application/x-yaml", "text/yaml"):
        document = protocols.parse_text(data)  # bytes: invalid UTF-8 is refused, never replaced
    else:
        document = parse_json(data, "protocol") if data else None
    if document is None:
        raise UnreadableInput.of([Problem("$", "the request body is empty")], "protocol")
    protocol, created = services().protocols.put(protocol_id, document, subject=g.caller.subject)
    return json_answer(protocol.document, 201 if created else 200)


@blueprint.post("/validate")
def validate() -> Response:
    """Any resource or Bundle -> its OperationOutcome (200 whether or not it is valid)."""
    return json_answer(operations.validate(_body("FHIR input")), 200, FHIR_JSON)


@blueprint.post("/orders")
def post_order() -> Response:
    found = services()
    mapped = operations.map_order_with_warnings(_body("order"), found.protocols.get, settings=found.settings.orders)
    return _accept("order", mapped.bundle, mapped.warnings)


@blueprint.post("/diary")
def post_diary() -> Response:
    document = _body("diary")
    items = document if isinstance(document, list) else [document]
    # Counted before anything is mapped: one request's mapping and outbox item stay bounded, and
    # larger diaries go through the bulk path, which streams them in chunks.
    limit = services().settings.http.max_diary_entries
    if len(items) > limit:
        raise TooLarge(
            f"This diary has {len(items)} entries; POST /diary takes at most {limit} per request "
            "(FHIR_MIGRAINE_MAX_DIARY_ENTRIES). Send larger diaries as NDJSON to POST /imports.",
            [Problem("$", f"has {len(items)} entries, more than the limit of {limit}")],
        )
    base = "$[{}]" if isinstance(document, list) else "$"
    entries = [Located(item, base.format(i)) for i, item in enumerate(items)]
    flag = request.args.get("summary", "false")
    if flag not in ("true", "false"):
        raise InputError.of([Problem("$.summary", "must be true or false")], "query")
    bundle, warnings = operations.map_diary_with_warnings(entries, with_summary=flag == "true")
    return _accept("diary", bundle, warnings)


def _withdrawal(item_id: str) -> Response:
    answer = json_answer({"outbox_id": item_id, "state": "pending"}, 202)
    answer.headers["Location"] = f"/outbox/{item_id}"
    return answer


@blueprint.delete("/orders/<order_id>")
def cancel_order(order_id: str) -> Response:
    """Cancel an order in the EHR (through the outbox, behind the patient's earlier items)."""
    return _withdrawal(_ehr().cancel_order(order_id, patient=request.args.get("patient"),
                                           reason=request.args.get("reason")))


@blueprint.delete("/diary/<entry_id>")
def retract_diary_entry(entry_id: str) -> Response:
    """Retract a diary entry in the EHR: its Observations become ``entered-in-error``."""
    return _withdrawal(_ehr().retract_diary(entry_id, patient=request.args.get("patient")))


@blueprint.get("/outbox")
def list_outbox() -> Response:
    """Summaries of the oldest items (of one state, up to ``limit``), read from columns only."""
    gateway = services().gateway
    if gateway is None:
        raise NotFound("No EHR is configured, so there is no outbox.")
    state = request.args.get("state")
    if state is not None and state not in STATES:
        raise InputError.of([Problem("$.state", f"must be one of {', '.join(STATES)}")], "query")
    limit = _limit(request.args.get("limit"))
    return json_answer({"items": gateway.outbox.summaries(state, limit), "counts": gateway.outbox.counts()})


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIST_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIST_LIMIT:
        raise InputError.of([Problem("$.limit", f"must be a whole number from 1 to {MAX_LIST_LIMIT}")], "query")
    return int(text)


@blueprint.get("/outbox/<item_id>")
def get_outbox_item(item_id: str) -> Response:
    gateway = services().gateway
    found = gateway.outbox.summary(item_id) if gateway is not None else None
    if found is None:
        raise NotFound(f"No outbox item {item_id!r}.")
    return json_answer(found)


@blueprint.post("/outbox/<item_id>/retry")
def retry_outbox_item(item_id: str) -> Response:
    """Put a dead or conflict item back in the queue (409 otherwise); its last error stays in its history."""
    gateway = services().gateway
    if gateway is None:
        raise NotFound(f"No outbox item {item_id!r}.")
    gateway.outbox.revive(item_id)
    return json_answer(gateway.outbox.summary(item_id))


@blueprint.get("/patients/<path:patient>/diary")
def patient_diary(patient: str) -> Response:
    found = _ehr().pull_unmapped(patient, since=request.args.get("since"))
    return json_answer({k: found[k] for k in ("diary", "resources", "invalid", "incomplete", "warnings")})


@blueprint.get("/patients/<path:patient>/summary")
def patient_summary(patient: str) -> Response:
    """The figures of the patient's diary as the EHR holds it (pulled and unmapped first): a month,
    a period, or all of it. Entries the pull reports invalid or incomplete are left out and listed."""
    args = request.args
    found = _ehr().pull_unmapped(patient)
    entries = operations.load_diary(Located(e, f"$.diary[{i}]") for i, e in enumerate(found["diary"]))
    if not entries:
        raise NotFound(f"The EHR holds no diary entries of this project for {patient}.")
    figures = operations.diary_summary(entries, month=args.get("month"), first=args.get("from"), last=args.get("to"))
    return json_answer({**figures, "left_out": {"invalid": found["invalid"], "incomplete": found["incomplete"]},
                  "warnings": found["warnings"]})


def _month() -> str:
    month = request.args.get("month")
    if month is None:
        raise InputError.of([Problem("$.month", "give the month of the report, such as ?month=2026-11")], "query")
    return month


@blueprint.post("/patients/<path:patient>/reports")
def file_report(patient: str) -> Response:
    """Make the patient's report of a month from what the EHR holds, and file it in the chart as a
    DocumentReference through the outbox (202); 200 when the same report is in the EHR already."""
    filed = _ehr().file_report(patient, _month())
    report = filed.report
    body: dict[str, Any] = {"month": report.view["month"], "figures": report.view["figures"],
                            "moh_risk": report.view["moh_risk"], "identifier": report.document["identifier"][0],
                            "replaces": filed.replaces}
    if filed.outbox_id is None:
        return json_answer({**body, "state": "filed", "document": filed.document})
    answer = json_answer({**body, "state": "pending", "outbox_id": filed.outbox_id}, 202)
    answer.headers["Location"] = f"/outbox/{filed.outbox_id}"
    return answer


@blueprint.get("/patients/<path:patient>/report")
def show_report(patient: str) -> Response:
    """The patient's report of a month as the EHR's data make it now, as PDF or HTML
    (``format``), without filing it."""
    kind = request.args.get("format", "pdf")
    if kind not in ("pdf", "html"):
        raise InputError.of([Problem("$.format", "must be pdf or html")], "query")
    month = _month()
    operations.report_month(month)
    entries, requests, _ = _ehr().report_sources(patient)
    report = operations.render_report(operations.report_view(entries, requests, month))
    if kind == "html":
        return Response(report.html, mimetype="text/html")
    return Response(report.pdf, mimetype="application/pdf")


@blueprint.get("/patients/<path:patient>/orders")
def patient_orders(patient: str) -> Response:
    found = _ehr().pull_unmapped(patient, since=request.args.get("since"), find_protocol=services().protocols.get)
    return json_answer({k: found[k] for k in ("orders", "resources", "invalid", "incomplete", "warnings")})
