"""A daemon thread that repeats one step every few seconds until stopped: the outbox worker, the
importer, the group puller and the readiness probe each run on one.

Daemon threads, so a process that must exit is never held up by an EHR that does not answer:
what a step leaves half done (an outbox item, an import job) stays leased and is taken up again
when its lease runs out. A step that raises is logged (its type only) and the loop goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Self


class Repeating:
    """``step`` every ``interval`` seconds in a daemon thread between ``start`` and ``stop``.
    Subclasses name themselves (``name``, and ``leftover``: what stays behind when a stop times
    out) and log to their own module's logger (``log``)."""

    name = "background thread"
    leftover = "its work stays leased"
    stop_timeout = 10.0
    log = logging.getLogger(__name__)

    def __init__(self, *, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> None:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def first(self) -> None:
        """Done once when the thread starts, before the first step."""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Start the thread (once; again after a stop)."""
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name.replace(" ", "-"), daemon=True)
            self._thread.start()
            self.log.info(f"{self.name} started")
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the thread to stop after the step in flight, and wait up to ``timeout`` seconds
        (``stop_timeout`` when None); whether it has stopped."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(self.stop_timeout if timeout is None else timeout)
        if thread.is_alive():  # kept, so a later stop waits for the same thread
            self.log.warning(f"{self.name} still busy at shutdown; {self.leftover}")
            return False
        self._thread = None
        self.log.info(f"{self.name} stopped")
        return True

    def _run(self) -> None:
        self._guarded(self.first)
        while not self._stop.is_set():
            self._guarded(self.step)
            self._stop.wait(self.interval)

    def _guarded(self, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:  # keep the thread alive; a lease brings back what was in hand
            self.log.error(f"{self.name} error", extra={"error": type(exc).__name__})


class JobRunner(Repeating):
    """A ``Repeating`` whose step handles every job its ``claim`` gives, one after another, until
    none is due or it is asked to stop (the importer, the group puller)."""

    def claim(self) -> Any:  # pragma: no cover - every subclass has its own
        """The next job due, claimed under a lease; None when none is."""
        raise NotImplementedError

    def process(self, job: Any) -> str:  # pragma: no cover - every subclass has its own
        """Handle one claimed job; its state afterwards."""
        raise NotImplementedError

    def step(self) -> None:
        self.run_once()

    def run_once(self) -> int:
        """Handle every job due now (until stopped); how many were handled."""
        handled = 0
        while not self._stop.is_set() and (job := self.claim()) is not None:
            self.process(job)
            handled += 1
        return handled
