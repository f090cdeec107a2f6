"""The readiness probe: the EHR's CapabilityStatement asked in a background thread, every
``ehr.probe_interval`` seconds, so ``/ready`` answers from the last result and never waits for the EHR."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fhir_migraine.ehr.background import Repeating
from fhir_migraine.ehr.interface import Ehr
from fhir_migraine.errors import EhrError

log = logging.getLogger(__name__)


class EhrProbe(Repeating):
    """The last answer of the EHR to ``metadata()``, refreshed by a thread between ``start`` and
    ``stop`` (a probe in flight ends by its time-out)."""

    name = "readiness probe"
    leftover = "a probe in flight ends by its time-out"
    stop_timeout = 5.0
    log = log

    def __init__(self, ehr: Ehr, *, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(interval=interval)
        self.ehr = ehr  # its time-out is the probe's (``ehr.probe_timeout``)
        self.clock = clock
        self._last: tuple[float, dict[str, Any]] | None = None

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

    def step(self) -> None:
        self.probe()
