"""The readiness probe: the EHR's CapabilityStatement asked in a background thread, every
``ehr.probe_interval`` seconds, so ``/ready`` answers from the last result and never waits for the EHR.
Each answer also refreshes the gateway's ``CapabilityCache``, and the state says which writes the
project needs the EHR does not advertise (``ehr.capabilities``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fhir_migraine.ehr.background import Repeating
from fhir_migraine.ehr.capabilities import Capabilities, CapabilityCache
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

    def __init__(self, ehr: Ehr, *, interval: float, clock: Callable[[], float] = time.monotonic,
                 capabilities: CapabilityCache | None = None) -> None:
        super().__init__(interval=interval)
        self.ehr = ehr  # its time-out is the probe's (``ehr.probe_timeout``)
        self.clock = clock
        self.capabilities = capabilities
        self._last: tuple[float, dict[str, Any]] | None = None

    def probe(self) -> dict[str, Any]:
        """Ask the EHR now and remember its answer; the state as ``state`` reports it."""
        try:
            statement = self.ehr.metadata()
            found: dict[str, Any] = {"reachable": True}
            found |= self._capabilities(statement)
        except EhrError as exc:
            found = {"reachable": False, "error": type(exc).__name__}
        except Exception as exc:  # a bug in a client must not end the probe thread
            log.error("readiness probe failed", extra={"error_type": type(exc).__name__})
            found = {"reachable": False, "error": type(exc).__name__}
        self._last = (self.clock(), found)
        return self.state()

    def _capabilities(self, statement: dict[str, Any]) -> dict[str, Any]:
        if self.capabilities is None:
            return {}
        try:
            return capability_state(self.capabilities.refresh(statement))
        except EhrError as exc:  # it answers, but not with a statement that can be read
            return {"capabilities_unknown": exc.message}

    def state(self) -> dict[str, Any]:
        """Whether the EHR answered at the last probe, and how many seconds ago that was (both
        None before the first probe)."""
        if self._last is None:
            return {"configured": True, "reachable": None, "probe_age_s": None}
        at, found = self._last
        return {"configured": True, **found, "probe_age_s": round(self.clock() - at, 1)}

    def step(self) -> None:
        self.probe()


#: The resource types each kind of outbox item writes (orders: the weight Observation and the
#: DetectedIssue of an order's findings besides its requests).
WRITES = {
    "orders": ("MedicationRequest", "RequestGroup", "Observation", "DetectedIssue"),
    "diary": ("Observation", "MedicationStatement", "QuestionnaireResponse"),
    "report": ("DocumentReference",),
}


def capability_state(caps: Capabilities) -> dict[str, Any]:
    """What ``/ready`` says of the EHR's capabilities: the write strategy it allows and, for each
    kind of item the project pushes, the writes it needs that the EHR does not advertise."""
    if not caps.known:
        return {"capabilities_unknown": "the EHR's /metadata is not a CapabilityStatement: every write is tried"}
    cannot = {kind: missing for kind, types in WRITES.items() if (missing := caps.missing_writes(types))}
    found: dict[str, Any] = {"write_strategy": caps.strategy()}
    if cannot:
        found["cannot_write"] = cannot
        found["warning"] = "; ".join(
            f"{kind} cannot be pushed: the EHR does not advertise {', '.join(missing)}" for kind, missing in cannot.items())
    return found
