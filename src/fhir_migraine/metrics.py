"""Prometheus metrics of the service: what ``GET /metrics`` shows (see docs/metrics.md).

Every label is a bounded, constant word: a route template, an HTTP method from a fixed list, a
status class (``2xx``, ``4xx``, ``5xx``, ``network``, ``other``), an EHR interaction (``read``,
``search``, ``create``…) or an outbox state. No label ever carries a patient, an identifier, an
id, a URL or a token.

Under gunicorn the worker processes count separately and the scrape adds them up: ``serve``
creates a private folder (0700) and names it in ``PROMETHEUS_MULTIPROC_DIR`` before the workers
fork (``prepare_multiprocess``), each worker writes its counters and histograms to files there,
the master marks a worker that exits as dead (``process_exited``) and removes the folder when it
stops (``remove_multiprocess``). In one process (the CLI, tests) the values stay in memory.

``prometheus_client`` chooses between the two when it is first imported, so it is imported here
only on first use (never in gunicorn's master before the folder is set): the instruments are
built then, in the process that uses them.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "fhir_migraine_"
#: The content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The route label of a request no route matched (its path is never a label).
UNMATCHED = "unmatched"
#: Methods kept as they are; any other becomes ``other`` (a client chooses the method).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
#: Outcome classes of a call to the EHR: its HTTP status class, ``network`` when no answer came
#: (connection refused or broken, a time-out, TLS), ``other`` for a failure with no status of the
#: EHR's (a patient not found, an unusable answer, the token endpoint).
STATUS_CLASSES = ("2xx", "4xx", "5xx", "network", "other")

#: Seconds; requests are answered in milliseconds, EHR calls take up to the EHR time-out.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
EHR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def status_class(status: int | None) -> str:
    """``2xx``, ``3xx``, ``4xx`` or ``5xx`` for an HTTP status; ``network`` for None."""
    if status is None:
        return "network"
    if 100 <= status <= 599:
        return f"{status // 100}xx"
    return "other"


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


@dataclass(frozen=True)
class Instruments:
    """The counters and histograms of this process."""

    registry: Any  # prometheus_client.CollectorRegistry: this process's own values
    requests: Any  # Histogram: route, method, status_class
    ehr_calls: Any  # Histogram: interaction, status_class
    deliveries: Any  # Counter: status_class


_lock = threading.Lock()
_instruments: Instruments | None = None


def instruments() -> Instruments:
    """The instruments of this process, built (and ``prometheus_client`` imported) on first use."""
    global _instruments
    with _lock:
        if _instruments is None:
            from prometheus_client import CollectorRegistry, Counter, Histogram

            registry = CollectorRegistry(auto_describe=True)
            _instruments = Instruments(
                registry,
                Histogram(f"{PREFIX}http_request_duration_seconds",
                          "Time to answer a request, by route template, method and status class.",
                          ("route", "method", "status_class"), buckets=REQUEST_BUCKETS, registry=registry),
                Histogram(f"{PREFIX}ehr_request_duration_seconds",
                          "Time of one call to the EHR, by FHIR interaction and outcome class.",
                          ("interaction", "status_class"), buckets=EHR_BUCKETS, registry=registry),
                Counter(f"{PREFIX}outbox_deliveries",
                        "Outbox parts sent to the EHR, by outcome: 2xx delivered; 4xx, 5xx, network or other failed.",
                        ("status_class",), registry=registry),
            )
        return _instruments


def observe_request(route: str | None, method: str, status: int, seconds: float) -> None:
    instruments().requests.labels(route or UNMATCHED, method_label(method), status_class(status)).observe(seconds)


def observe_ehr_call(interaction: str, outcome: str, seconds: float) -> None:
    instruments().ehr_calls.labels(interaction, outcome).observe(seconds)


def count_delivery(outcome: str) -> None:
    instruments().deliveries.labels(outcome).inc()


# --- several processes (gunicorn) -------------------------------------------------------------------

#: Sets (a value) or removes (None) a variable of the process environment, which
#: prometheus-client reads itself; ``config.set_library_variable``, passed in by ``serve``.
SetVariable = Callable[[str, str | None], None]
_folder: str | None = None  # the folder this process (or its parent before the fork) made


def multiprocess() -> bool:
    """Whether this process's values go to files of a shared folder (prometheus-client decided
    when it was imported, from ``PROMETHEUS_MULTIPROC_DIR``)."""
    from prometheus_client import values

    return bool(getattr(values.ValueClass, "_multiprocess", False))


def prepare_multiprocess(set_variable: SetVariable) -> str:
    """Create a private folder for the worker processes' values and name it in the environment
    (before they fork); its path."""
    global _folder
    folder = tempfile.mkdtemp(prefix="fhir-migraine-metrics-")  # 0700
    os.chmod(folder, 0o700)
    set_variable(MULTIPROC_ENV, folder)
    _folder = folder
    # Imported now, with the folder named: gunicorn calls ``process_exited`` from its SIGCHLD
    # handler, which may interrupt itself (two workers exiting together), and an import it
    # interrupted would leave the module half made for the second call.
    importlib.import_module("prometheus_client.multiprocess")
    from prometheus_client import values

    if not multiprocess():  # imported earlier, before the folder was named
        values.ValueClass = values.get_value_class()
    return folder


def process_exited(pid: int) -> None:
    """In gunicorn's master, after a worker exited: drop what only a live process may report."""
    if _folder is not None and os.path.isdir(_folder):
        from prometheus_client import multiprocess as prometheus_multiprocess

        prometheus_multiprocess.mark_process_dead(pid, _folder)


def remove_multiprocess(folder: str, owner: int, set_variable: SetVariable) -> None:
    """Remove the folder once no worker writes to it any more: only in the process that created it
    (``owner``; a gunicorn worker leaves ``serve`` through the same stack when it exits)."""
    global _folder
    if os.getpid() != owner:
        return
    if _folder == folder:
        set_variable(MULTIPROC_ENV, None)
        _folder = None
    shutil.rmtree(folder, ignore_errors=True)


# --- the scrape -------------------------------------------------------------------------------------

class _Delegate:
    """One registry's metrics inside another (the process's own values beside the queue's)."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def collect(self) -> Iterable[Any]:
        return self.source.collect()


@dataclass(frozen=True)
class QueueFigures:
    """What the outbox collector reads at scrape time: items per state, and how long the oldest
    undelivered item has waited (None: none waits)."""

    counts: dict[str, int]
    oldest_pending_age_s: float | None


class _QueueCollector:
    """The outbox's figures, read from the shared store at each scrape."""

    def __init__(self, read: Callable[[], QueueFigures]) -> None:
        self.read = read

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        readable = GaugeMetricFamily(f"{PREFIX}outbox_readable", "1 when the outbox could be read for this scrape, else 0.")
        try:
            figures = self.read()
        except Exception:  # the store is down: the scrape still answers, and says so
            readable.add_metric([], 0)
            yield readable
            return
        readable.add_metric([], 1)
        yield readable
        items = GaugeMetricFamily(f"{PREFIX}outbox_items", "Outbox items by state (the whole queue of the database).",
                                  labels=("state",))
        for state, count in sorted(figures.counts.items()):
            items.add_metric([state], count)
        yield items
        yield GaugeMetricFamily(f"{PREFIX}outbox_oldest_pending_age_seconds",
                                "Seconds the oldest pending or sending item has waited since it was queued (0: none).",
                                value=figures.oldest_pending_age_s or 0.0)


def exposition(queue: Callable[[], QueueFigures] | None = None) -> bytes:
    """The text exposition of every process's values (added up under gunicorn) and, with
    ``queue``, the outbox's figures read now."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client import multiprocess as prometheus_multiprocess

    registry = CollectorRegistry(auto_describe=False)
    own = instruments()
    if multiprocess():
        prometheus_multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Delegate(own.registry))
    if queue is not None:
        registry.register(_QueueCollector(queue))
    result: bytes = generate_latest(registry)
    return result
