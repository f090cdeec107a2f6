"""The readiness probe: the EHR's CapabilityStatement asked in a background thread, every
``ehr.probe_interval`` seconds, so ``/ready`` answers from the last result and never waits for the EHR."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fhir_migraine.ehr.interface import Ehr
from fhir_migraine.errors import EhrError

log = logging.getLogger(__name__)


class EhrProbe:
    """The last answer of the EHR to ``metadata()``, refreshed by a thread between ``start`` and ``stop``."""

    def __init__(self, ehr: Ehr, *, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ehr = ehr  # its time-out is the probe's (``ehr.probe_timeout``)
        self.interval = interval
        self.clock = clock
        self._last: tuple[float, dict[str, Any]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def probe(self) -> dict[str, Any]:
        """Ask the EHR now and remember its answer; the state as ``state`` reports it."""
        try:
            self.ehr.metadata()
            found: dict[str, Any] = {"reachable": True}
        except EhrError as exc:
            found = {"reachable": False, "error": type(exc).__name__}
        except Exception as exc:  # a bug in a client must not end the probe thread
            log.error("readiness probe failed", extra={"error_type": type(exc).__name__})
            found = {"reachable": False, "error": type(exc).__name__}
        self._last = (self.clock(), found)
        return self.state()

    def state(self) -> dict[str, Any]:
        """Whether the EHR answered at the last probe, and how many seconds ago that was (both
        None before the first probe)."""
        if self._last is None:
            return {"configured": True, "reachable": None, "probe_age_s": None}
        at, found = self._last
        return {"configured": True, **found, "probe_age_s": round(self.clock() - at, 1)}

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> EhrProbe:
        """Probe now and then every ``interval`` seconds in a daemon thread (once)."""
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="fhir-migraine-ehr-probe", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread (a probe in flight ends by its time-out); whether it stopped in time."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.probe()
            self._stop.wait(self.interval)
