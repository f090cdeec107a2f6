"""The bulk path for diaries: ``POST /imports`` (an NDJSON upload, streamed to disk) and
``GET /imports/{id}`` (its progress); the importer thread does the mapping (``ehr.importer``)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from fhir_migraine.api.headers import json_answer
from fhir_migraine.api.services import services_of
from fhir_migraine.ehr.imports import ImportJobs, too_large
from fhir_migraine.errors import NotFound, Problem, UnsupportedMediaType

NDJSON = "application/x-ndjson"
blueprint = Blueprint("imports", __name__)


def _jobs() -> ImportJobs:
    jobs = services_of(current_app).imports
    if jobs is None:
        raise NotFound("No EHR is configured (FHIR_MIGRAINE_EHR_URL): an import has nowhere to go.")
    return jobs


@blueprint.post("/imports")
def post_import() -> Response:
    """Store an NDJSON diary (one entry per line) for the importer; 202 with the import's id."""
    jobs = _jobs()
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if request.mimetype != NDJSON or charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(
            f"POST /imports takes {NDJSON} in UTF-8 (one diary entry per line), not {request.content_type or 'no type'}.",
            [Problem("$", f"must be sent as Content-Type: {NDJSON}")],
        )
    # This route's own limit, above the body limit of the other endpoints: the upload goes to disk.
    limit = services_of(current_app).settings.http.max_import_bytes
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    try:
        job = jobs.receive(request.stream, limit=limit)
    except RequestEntityTooLarge:  # a chunked upload that went past the limit
        raise too_large(limit) from None
    answer = json_answer({"import_id": job.id, "state": job.state}, 202)
    answer.headers["Location"] = f"/imports/{job.id}"
    return answer


@blueprint.get("/imports/<import_id>")
def get_import(import_id: str) -> Response:
    found = _jobs().summary(import_id)
    if found is None:
        raise NotFound(f"No import {import_id!r}.")
    return json_answer(found)
