"""``fhir-migraine serve``: the Flask app under gunicorn, one app per worker process.

Lifecycle of a worker process: gunicorn forks it, it builds its own app (``load``, so no
database connection crosses the fork), ``post_worker_init`` starts its outbox worker thread and
the EHR readiness probe, and ``worker_exit`` stops them after the transaction in flight. The
master process never builds an app or starts a thread.

Metrics: ``serve`` creates a private folder for the worker processes' counters and histograms and
names it in ``PROMETHEUS_MULTIPROC_DIR`` before gunicorn forks (``metrics.prepare_multiprocess``);
``child_exit`` marks an exited worker dead there and the folder is removed when gunicorn stops, so
``GET /metrics`` answered by any worker adds up every worker's counts.

Each worker process serves with ``EdgeWorker`` (``api.edge_worker``): gunicorn's threaded worker
with a bounded pool, which reads request headers in its event loop, so a slow client holds no
thread, and cuts off a client that takes longer than ``http.read_timeout`` to send its headers or
its body.
"""

from __future__ import annotations

import gc
import math
import os
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from fhir_migraine import logs, metrics
from fhir_migraine.api.edge_worker import EdgeWorker
from fhir_migraine.config import Settings, set_library_variable


class JsonLogger(Logger):  # type: ignore[misc]
    """gunicorn's own messages as JSON lines, through the project's formatter."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        logs.configure()


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        # Each worker builds its own app and database connection after the fork.
        from fhir_migraine.api import create_app

        logs.configure()
        app = create_app(self.settings)
        # What the app holds for its lifetime (the compiled profiles, the terminology, the
        # protocols) leaves the collector's generations: a full collection, which a large request
        # such as a CDS call's prefetch sets off, then no longer walks it (p99 of order-sign in
        # benchmarks/cds.py: about 150 ms without, 100 ms with).
        gc.freeze()
        return app


def post_worker_init(worker: Any) -> None:
    """gunicorn hook, in the worker process once its app is loaded: start the outbox worker."""
    from fhir_migraine.api import start_outbox_worker

    start_outbox_worker(worker.wsgi, stop_at_exit=False)


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the worker process as it exits: stop the outbox worker, letting the
    transaction in flight finish (an item it cannot finish in time stays leased, not lost)."""
    from fhir_migraine.api import stop_outbox_worker

    app = getattr(worker, "wsgi", None)
    if app is not None:
        stop_outbox_worker(app, timeout=STOP_TIMEOUT_S)


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master once a worker has exited: what only a live process may report
    is dropped from the metrics folder (its counters stay, so totals never go down)."""
    metrics.process_exited(worker.pid)


#: gunicorn gives a worker this long to finish its requests on shutdown; the outbox worker gets
#: most of it, so a delivery in flight can end before the process does.
GRACEFUL_TIMEOUT_S = 20
STOP_TIMEOUT_S = 15.0


def gunicorn_options(settings: Settings, *, host: str, port: int) -> dict[str, Any]:
    """gunicorn's settings for ``serve``."""
    return {
        "bind": f"{host}:{port}",
        "workers": settings.http.workers,
        "worker_class": EdgeWorker,
        "threads": settings.http.threads,
        # One request per connection: a connection kept open between requests could trickle the
        # next request's headers on a thread, and an unread body would be taken for the next request.
        "keepalive": 0,
        "post_worker_init": post_worker_init,
        "worker_exit": worker_exit,
        "child_exit": child_exit,
        "accesslog": None,
        "logger_class": JsonLogger,  # request paths can name patients; the app logs without PHI
        "timeout": max(1, math.ceil(settings.http.hung_worker_timeout)),  # gunicorn takes whole seconds
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
    }


def serve(settings: Settings, *, host: str, port: int) -> int:
    logs.configure()
    options = gunicorn_options(settings, host=host, port=port)
    # Before the workers fork and before any metric exists.
    folder, master = metrics.prepare_multiprocess(set_library_variable), os.getpid()
    try:
        _Gunicorn(settings, options).run()
    finally:
        metrics.remove_multiprocess(folder, master, set_library_variable)  # in the master only: a worker exits through here too
    return 0
