"""The HTTP service: Flask app factory, blueprints, error handlers and the OpenAPI description.

``create_app`` builds the app and its stores but starts no thread: the outbox worker, the
importer and the group puller are started by ``start_outbox_worker`` once the process that will serve is running (under
gunicorn, in each worker process after the fork, see ``api.server``) and stopped by
``stop_outbox_worker``.
"""

from __future__ import annotations

import atexit
import logging
import time

from flask import Flask, Response, g, request

from fhir_migraine import metrics
from fhir_migraine.api import (
    bulk_routes,
    cds_routes,
    errors,
    fhir_routes,
    headers,
    import_routes,
    limits,
    metrics_routes,
    routes,
    security,
    smart_app,
)
from fhir_migraine.api.services import EXTENSION, Services, services_of
from fhir_migraine.config import Settings
from fhir_migraine.ehr.gateway import EhrGateway
from fhir_migraine.ehr.group_puller import GroupPuller
from fhir_migraine.ehr.group_pulls import GroupPulls
from fhir_migraine.ehr.importer import Importer
from fhir_migraine.ehr.imports import ImportJobs
from fhir_migraine.library import ProtocolStore
from fhir_migraine.validation import default_validator

log = logging.getLogger("fhir_migraine.api")


def start_outbox_worker(app: Flask, *, stop_at_exit: bool = True) -> bool:
    """Start the app's outbox worker, importer and group puller in this process (when an EHR is
    configured and the worker enabled), and the EHR readiness probe (when an EHR is configured);
    whether the outbox worker and the job threads run. With ``stop_at_exit``, they are stopped when the interpreter
    exits (gunicorn stops them in its ``worker_exit`` hook instead)."""
    found = services_of(app)
    gateway = found.gateway
    if gateway is None:
        return False
    gateway.start_probe()
    if stop_at_exit:
        atexit.unregister(gateway.stop_probe)  # once, however often this is called
        atexit.register(gateway.stop_probe)
    if not gateway.start_worker():
        return False
    if found.imports is not None and found.importer is None:
        found.importer = importer_of(found.settings, found.imports, gateway).start()
    if found.group_pulls is not None and found.group_puller is None:
        found.group_puller = GroupPuller(found.group_pulls, gateway, lease=found.settings.outbox.lease,
                                         retention_days=found.settings.outbox.retention_days,
                                         find_protocol=found.protocols.get).start()
    if stop_at_exit:
        atexit.unregister(gateway.stop_worker)
        atexit.register(gateway.stop_worker)
        atexit.unregister(_stop_job_threads)
        atexit.register(_stop_job_threads, app)
    return True


def stop_outbox_worker(app: Flask, timeout: float = 10.0) -> bool:
    """Stop the app's importer after the chunk in flight, its group puller at its next step, its
    outbox worker after the transaction in flight, and the readiness probe; whether they stopped in time."""
    jobs_stopped = _stop_job_threads(app, timeout)
    gateway = services_of(app).gateway
    if gateway is None:
        return jobs_stopped
    gateway.stop_probe(timeout=min(timeout, 1.0))  # its thread is a daemon: nothing to lose
    return gateway.stop_worker(timeout) and jobs_stopped


def importer_of(settings: Settings, jobs: ImportJobs, gateway: EhrGateway) -> Importer:
    """An importer that queues each chunk through the gateway (validated by the mapping already)."""
    return Importer(jobs, lambda bundle: gateway.queue(bundle, kind="diary", checked=True),
                    lease=settings.outbox.lease, interval=settings.worker.interval,
                    max_line_bytes=settings.http.max_body_bytes)


def _stop_job_threads(app: Flask, timeout: float = 10.0) -> bool:
    """Stop the importer and the group puller (each gives its job back, or leaves it leased)."""
    found = services_of(app)
    importer, found.importer = found.importer, None
    puller, found.group_puller = found.group_puller, None
    stopped = puller.stop(timeout) if puller is not None else True
    return (importer.stop(timeout) if importer is not None else True) and stopped


def create_app(settings: Settings | None = None) -> Flask:
    """The service configured by ``settings`` (from the environment when None)."""
    settings = settings or Settings.from_env()
    # The FHIR package is read now: an installation without it fails at start (ConfigError),
    # not with an empty CapabilityStatement and a validator that knows no profile.
    default_validator()
    app = Flask(__name__)
    services = Services(settings, ProtocolStore(settings.database, seed=settings.seed_protocols))
    if settings.ehr.url:
        services.gateway = EhrGateway.from_settings(settings)
        services.imports = ImportJobs(settings.database, folder=settings.import_dir)
        services.group_pulls = GroupPulls(settings.database)
    cds_routes.open_stores(services)
    app.extensions[EXTENSION] = services

    @app.before_request
    def _started() -> None:  # first, so a request refused by a later check is timed too
        g.started = time.perf_counter()

    security.register(app, settings.api)
    limits.register(app, settings.http)  # after the caller is known: anonymous callers learn nothing more
    headers.register(app)
    errors.register(app)
    app.register_blueprint(routes.blueprint)
    app.register_blueprint(fhir_routes.blueprint)
    app.register_blueprint(import_routes.blueprint)
    app.register_blueprint(bulk_routes.blueprint)
    app.register_blueprint(smart_app.blueprint)
    app.register_blueprint(cds_routes.blueprint)
    app.register_blueprint(metrics_routes.blueprint)

    @app.after_request
    def _log(response: Response) -> Response:
        # The route template, never the URL: a URL can name a patient.
        route = request.url_rule.rule if request.url_rule else "(no route)"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        log.info("request", extra={"method": request.method, "route": route, "status": response.status_code,
                                   "duration_ms": round(elapsed * 1000, 1)})
        metrics.observe_request(request.url_rule.rule if request.url_rule else None, request.method,
                                response.status_code, elapsed)
        return response

    return app
