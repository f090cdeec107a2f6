"""The HTTP service: Flask app factory, blueprints, error handlers and the OpenAPI description."""

from __future__ import annotations

import logging
import time
from typing import Any
from dataclasses import dataclass, field

from flask import Flask, Response, g, request

from fhir_migraine.api import errors, fhir_routes, routes, security
from fhir_migraine.config import Settings
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.ehr.outbox import Outbox
from fhir_migraine.ehr.worker import RetryPolicy, Worker
from fhir_migraine.library import ProtocolStore
from fhir_migraine.validation import default_validator

log = logging.getLogger("fhir_migraine.api")


@dataclass
class Services:
    """What the endpoints use; the EHR parts are None when no EHR is configured."""

    settings: Settings
    protocols: ProtocolStore
    outbox: Outbox | None = None
    client: FhirClient | None = None
    worker: Worker | None = None
    ehr_seen: dict[str, Any] = field(default_factory=dict)  # the EHR's last answer to /ready's check

    @property
    def policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(base=s.retry_base, cap=s.retry_cap, lease=s.lease, max_attempts=s.max_attempts)


def ehr_client(settings: Settings) -> FhirClient:
    from fhir_migraine.ehr.auth import auth_from_settings

    assert settings.ehr_url is not None
    return FhirClient(
        settings.ehr_url, auth=auth_from_settings(settings.env), timeout=settings.ehr_timeout, verify=settings.ehr_verify
    )


def create_app(settings: Settings | None = None) -> Flask:
    """The service configured by ``settings`` (from the environment when None)."""
    settings = settings or Settings.from_env()
    # The FHIR package is read now: an installation without it fails at start (ConfigError),
    # not with an empty CapabilityStatement and a validator that knows no profile.
    default_validator()
    app = Flask(__name__)
    services = Services(settings, ProtocolStore(settings.database, seed=settings.seed_protocols))
    if settings.ehr_url:
        services.outbox = Outbox(settings.database)
        services.client = ehr_client(settings)
        if settings.worker:
            services.worker = Worker(services.outbox, services.client, services.policy, interval=settings.worker_interval).start()
    app.extensions["fhir_migraine"] = services
    security.register(app, settings)
    errors.register(app)
    app.register_blueprint(routes.blueprint)
    app.register_blueprint(fhir_routes.blueprint)

    @app.before_request
    def _started() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _log(response: Response) -> Response:
        # The route template, never the URL: a URL can name a patient.
        route = request.url_rule.rule if request.url_rule else "(no route)"
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        log.info("request", extra={"method": request.method, "route": route, "status": response.status_code,
                                   "duration_ms": round(elapsed, 1)})
        return response

    return app
