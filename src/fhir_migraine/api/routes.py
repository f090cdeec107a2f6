"""Endpoints: parse the request, call the shared operations, serialize the answer."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, json, request

from fhir_migraine import operations
from fhir_migraine.api.openapi import openapi
from fhir_migraine.documents import parse_json
from fhir_migraine.errors import Problem, UnreadableInput
from fhir_migraine.inputs import protocols
from fhir_migraine.inputs.diary_files import Located
from fhir_migraine.library import ProtocolStore

FHIR_JSON = "application/fhir+json"
blueprint = Blueprint("fhir_migraine", __name__)


def _store() -> ProtocolStore:
    return current_app.extensions["protocols"]  # type: ignore[no-any-return]


def _json(body: Any, status: int = 200, mimetype: str = "application/json") -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=mimetype)


def _body(what: str) -> Any:
    data = request.get_data(cache=False)
    if not data:
        raise UnreadableInput.of([Problem("$", "the request body is empty")], what)
    return parse_json(data, what)


@blueprint.get("/health")
def health() -> Response:
    return _json({"status": "ok"})


@blueprint.get("/openapi.json")
def openapi_document() -> Response:
    return _json(openapi())


@blueprint.get("/protocols")
def list_protocols() -> Response:
    return _json({"protocols": list(_store().summaries())})


@blueprint.get("/protocols/<protocol_id>")
def get_protocol(protocol_id: str) -> Response:
    return _json(_store().require(protocol_id).document)


@blueprint.put("/protocols/<protocol_id>")
def put_protocol(protocol_id: str) -> Response:
    data = request.get_data(cache=False)
    if request.mimetype in ("application/yaml", "application/x-yaml", "text/yaml"):
        document = protocols.parse_text(data.decode("utf-8", errors="replace"))
    else:
        document = parse_json(data, "protocol") if data else None
    if document is None:
        raise UnreadableInput.of([Problem("$", "the request body is empty")], "protocol")
    protocol, created = _store().put(protocol_id, document)
    return _json(protocol.document, 201 if created else 200)


@blueprint.post("/diary")
def post_diary() -> Response:
    document = _body("diary")
    items = document if isinstance(document, list) else [document]
    base = "$[{}]" if isinstance(document, list) else "$"
    entries = [Located(item, base.format(i)) for i, item in enumerate(items)]
    return _json(operations.map_diary(entries), 201, FHIR_JSON)


@blueprint.post("/orders")
def post_order() -> Response:
    bundle = operations.map_order(_body("order"), _store().get)
    return _json(bundle, 201, FHIR_JSON)
