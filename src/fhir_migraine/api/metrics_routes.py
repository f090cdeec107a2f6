"""``GET /metrics``: the Prometheus text exposition (see docs/metrics.md), behind the
``migraine:metrics`` scope (``api.security``).

The outbox's figures are read from the database at each scrape; the counters and histograms are
this process's, or every worker process's added up under gunicorn (``metrics``)."""

from __future__ import annotations

from functools import partial

from flask import Blueprint, Response, current_app

from fhir_migraine import metrics
from fhir_migraine.api.services import services_of
from fhir_migraine.ehr.outbox import Outbox

blueprint = Blueprint("metrics", __name__)


def queue_figures(outbox: Outbox) -> metrics.QueueFigures:
    """The outbox's items per state and the age of its oldest undelivered item, read now."""
    found = outbox.readiness()
    age = found.pop("oldest_pending_age_s")
    return metrics.QueueFigures({state: int(count) for state, count in found.items()}, age)


@blueprint.get("/metrics", endpoint="metrics")
def metrics_text() -> Response:
    gateway = services_of(current_app).gateway
    queue = partial(queue_figures, gateway.outbox) if gateway is not None else None
    return Response(metrics.exposition(queue), content_type=metrics.CONTENT_TYPE)
