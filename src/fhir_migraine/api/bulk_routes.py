"""A group's pull through the service: ``POST /bulk-pulls`` (the group, and optionally ``since``)
queues it, ``GET /bulk-pulls/{id}`` shows its progress, and ``GET /bulk-pulls/{id}/patients``
gives each member's orders and diary entries (NDJSON, one member per line) once it is done. The
group puller thread runs it (``ehr.group_puller``): FHIR Bulk Data where the EHR offers it."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, current_app, request

from fhir_migraine.api.headers import json_answer
from fhir_migraine.api.services import services_of
from fhir_migraine.documents import parse_json
from fhir_migraine.ehr.bulk import group_reference
from fhir_migraine.ehr.group_pulls import GroupPulls
from fhir_migraine.ehr.pull import since_instant
from fhir_migraine.errors import Conflict, InputError, NotFound, Problem

NDJSON = "application/x-ndjson"
blueprint = Blueprint("bulk_pulls", __name__)


def _pulls() -> GroupPulls:
    pulls = services_of(current_app).group_pulls
    if pulls is None:
        raise NotFound("No EHR is configured (FHIR_MIGRAINE_EHR_URL): there is nothing to pull from.")
    return pulls


@blueprint.post("/bulk-pulls")
def post_bulk_pull() -> Response:
    """Queue a pull of every member of a group; 202 with its id and ``Location``."""
    pulls = _pulls()
    body = parse_json(request.get_data(), "request")
    if not isinstance(body, dict):
        raise InputError.of([Problem("$", "must be a JSON object such as {\"group\": \"Group/7\"}")], "request")
    unknown = sorted(set(body) - {"group", "since"})
    if unknown:
        raise InputError.of([Problem(f"$.{name}", "is not a field of a bulk pull (group, since)") for name in unknown],
                            "request")
    group = body.get("group")
    if not isinstance(group, str):
        raise InputError.of([Problem("$.group", "give the group to pull, such as \"Group/7\"")], "request")
    since = body.get("since")
    if since is not None and not isinstance(since, str):
        raise InputError.of([Problem("$.since", "must be an instant such as 2026-11-01T00:00:00Z")], "request")
    since_instant(since)
    pull_id = pulls.create(group_reference(group), since)
    answer = json_answer(pulls.summary(pull_id), 202)
    answer.headers["Location"] = f"/bulk-pulls/{pull_id}"
    return answer


@blueprint.get("/bulk-pulls/<pull_id>")
def get_bulk_pull(pull_id: str) -> Response:
    found = _pulls().summary(pull_id)
    if found is None:
        raise NotFound(f"No bulk pull {pull_id!r}.")
    return json_answer(found)


@blueprint.get("/bulk-pulls/<pull_id>/patients")
def get_bulk_pull_patients(pull_id: str) -> Response:
    """Each member's result, one JSON object per line, streamed from the store; 409 until done."""
    pulls = _pulls()
    found = pulls.summary(pull_id)
    if found is None:
        raise NotFound(f"No bulk pull {pull_id!r}.")
    if found["state"] != "done":
        raise Conflict(f"Bulk pull {pull_id!r} is {found['state']}: its patients are given once it is done.")

    def lines() -> Iterator[str]:
        for result in pulls.results(pull_id):
            yield result + "\n"

    return Response(lines(), mimetype=NDJSON)
