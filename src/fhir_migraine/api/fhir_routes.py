"""FHIR endpoints under /fhir: the CapabilityStatement, the project's StructureDefinitions and
``$validate`` (a resource, or Parameters with ``resource`` and ``profile``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, request

from fhir_migraine import __version__, operations, shipped
from fhir_migraine.documents import parse_json
from fhir_migraine.errors import InputError, NotFound, Problem, UnreadableInput
from fhir_migraine.validation import default_validator

FHIR_JSON = "application/fhir+json"
blueprint = Blueprint("fhir", __name__, url_prefix="/fhir")


def _fhir(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=FHIR_JSON)


@lru_cache(maxsize=1)
def _structure_definitions() -> dict[str, dict[str, Any]]:
    found = {}
    for resource in shipped.conformance_resources():
        if resource.get("resourceType") == "StructureDefinition":
            found[resource["id"]] = resource
    return found


@lru_cache(maxsize=1)
def capability_statement() -> dict[str, Any]:
    """What this service offers, with the project's profiles by resource type."""
    by_type: dict[str, list[str]] = {}
    for definition in _structure_definitions().values():
        if definition.get("type") != "Extension":
            by_type.setdefault(definition["type"], []).append(definition["url"])
    validate = {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"}
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "kind": "instance",
        "software": {"name": "fhir-migraine", "version": __version__},
        "implementation": {"description": "fhir-migraine: IV migraine infusion protocols and headache diaries as FHIR R4"},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {"type": kind, "supportedProfile": sorted(urls), "operation": [validate]}
                    for kind, urls in sorted(by_type.items())
                ]
                + [{"type": "StructureDefinition", "interaction": [{"code": "read"}]}],
                "operation": [validate],
            }
        ],
    }


@blueprint.get("/metadata")
def metadata() -> Response:
    return _fhir(capability_statement())


@blueprint.get("/StructureDefinition/<definition_id>")
def structure_definition(definition_id: str) -> Response:
    found = _structure_definitions().get(definition_id)
    if found is None:
        raise NotFound(f"No StructureDefinition {definition_id!r} in the project's package.")
    return _fhir(found)


def _resource_and_profile(resource_type: str | None) -> tuple[dict[str, Any], str | None]:
    data = request.get_data(cache=False)
    if not data:
        raise UnreadableInput.of([Problem("$", "the request body is empty")], "FHIR input")
    body = parse_json(data, "FHIR input")
    profile = request.args.get("profile")
    if isinstance(body, dict) and body.get("resourceType") == "Parameters" and resource_type != "Parameters":
        resource = None
        for parameter in body.get("parameter", []) if isinstance(body.get("parameter"), list) else []:
            if not isinstance(parameter, dict):
                continue
            if parameter.get("name") == "resource":
                resource = parameter.get("resource")
            elif parameter.get("name") == "profile":
                profile = parameter.get("valueUri") or parameter.get("valueCanonical") or profile
        if not isinstance(resource, dict):
            raise InputError.of([Problem("$.parameter", "needs a 'resource' parameter holding the resource")], "Parameters")
        body = resource
    if not isinstance(body, dict):
        raise InputError.of([Problem("$", "must be a FHIR resource (a JSON object)")], "FHIR input")
    if resource_type is not None and body.get("resourceType") != resource_type:
        raise InputError.of([Problem("$.resourceType", f"must be {resource_type!r} at this endpoint")], "FHIR input")
    if profile is not None and profile.split("|")[0] not in default_validator().profiles:
        raise InputError.of([Problem("$.profile", f"unknown profile {profile}")], "FHIR input")
    return body, profile


@blueprint.post("/$validate")
def fhir_validate() -> Response:
    resource, profile = _resource_and_profile(None)
    return _fhir(operations.validate(resource, profile))


@blueprint.post("/<resource_type>/$validate")
def fhir_validate_type(resource_type: str) -> Response:
    resource, profile = _resource_and_profile(resource_type)
    return _fhir(operations.validate(resource, profile))
