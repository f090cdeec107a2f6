"""The group puller: a background thread per service process that claims group pulls
(``ehr.group_pulls``), runs each through the gateway (FHIR Bulk Data, or one pull per member) and
stores each member's unmapped result as it is read. While a pull runs, a heartbeat renews its
lease every third of it (the export's waits and downloads included); a lease lost stops the pull at
its next step. Finished pulls past retention are purged, and export folders a killed process left
behind swept, at start and every hour. Logs carry pull ids, methods and counts only, never a
patient or a resource.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from fhir_migraine.ehr import bulk
from fhir_migraine.ehr.background import JobRunner
from fhir_migraine.ehr.bulk import GroupPull
from fhir_migraine.ehr.group_pulls import GroupPullJob, GroupPulls
from fhir_migraine.errors import FhirMigraineError
from fhir_migraine.inputs.orders import FindProtocol

log = logging.getLogger(__name__)
#: Seconds between two purges of finished pulls (and sweeps of stale export folders).
PURGE_EVERY_S = 3600.0


class Puller(Protocol):
    """What the group puller needs of the gateway (``gateway.EhrGateway``)."""

    def group_pull(self, group: str, *, since: str | None = ..., folder: str | None = ...,
                   alive: Callable[[], bool] = ..., sleep: Callable[[float], object] | None = ...) -> GroupPull: ...

    def unmapped(self, found: GroupPull, find_protocol: FindProtocol | None = ...) -> Any: ...


class Heartbeat:
    """Renews a lease every ``every`` seconds on a daemon thread until stopped; ``lost`` once a
    renewal fails (another puller owns the job)."""

    def __init__(self, renew: Callable[[], bool], every: float) -> None:
        self.renew, self.every = renew, every
        self.lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="group-pull-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        while not self._done.wait(self.every):
            try:
                renewed = self.renew()
            except FhirMigraineError:  # the database did not answer: try again at the next beat
                continue
            if not renewed:
                self.lost = True
                return


class GroupPuller(JobRunner):
    """Claims group pulls from ``jobs`` and runs them through ``gateway``; a thread when started,
    or driven by ``run_once``."""

    name = "group puller"
    leftover = "its group pull stays leased"
    log = log

    def __init__(self, jobs: GroupPulls, gateway: Puller, *, lease: float, retention_days: float,
                 interval: float = 1.0, folder: str | None = None, find_protocol: FindProtocol | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(interval=interval)
        self.jobs, self.gateway, self.lease = jobs, gateway, lease
        self.retention_days, self.folder, self.find_protocol = retention_days, folder, find_protocol
        self.clock = clock
        self._purged_at: float | None = None

    def first(self) -> None:
        self.purge_when_due()

    def step(self) -> None:
        self.purge_when_due()
        super().step()

    def purge_when_due(self) -> None:
        """Purge finished pulls past retention and sweep stale export folders, at most every hour."""
        now = self.clock()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = now
        if purged := self.jobs.purge(self.retention_days):
            log.info("group pulls purged", extra={"count": purged})
        if swept := bulk.sweep(self.folder):
            log.info("stale export folders swept", extra={"count": swept})

    def claim(self) -> GroupPullJob | None:
        return self.jobs.claim(self.lease)

    def process(self, job: GroupPullJob) -> str:
        """Run one claimed pull to its end; its state afterwards (``lost`` when another puller took
        it over, ``pending`` when this one is stopping)."""
        log.info("group pull claimed", extra={"bulk_pull_id": job.id})
        with Heartbeat(lambda: self.jobs.renew(job, self.lease), self.lease / 3) as beat:
            def alive() -> bool:
                return not self._stop.is_set() and not beat.lost

            found: GroupPull | None = None
            try:
                found = self.gateway.group_pull(job.group, since=job.since, folder=self.folder, alive=alive,
                                                sleep=self._stop.wait)
                return self._read_members(job, found, alive)
            except (FhirMigraineError, OSError, RecursionError) as error:
                return self._ended(job, error, beat)
            finally:
                if found is not None:
                    found.close()

    def _read_members(self, job: GroupPullJob, found: GroupPull, alive: Callable[[], bool]) -> str:
        """Store each member's result as it is read, then finish the pull."""
        if not self.jobs.started(job, found.method, len(found.members), self.lease):
            return "lost"
        for position, result in enumerate(self.gateway.unmapped(found, self.find_protocol)):
            if not alive():
                return self._interrupted(job)
            if not self.jobs.add(job, position, result, self.lease):
                return self._interrupted(job, lost=True)
        if not self.jobs.finish(job):
            return "lost"
        log.info("group pull done", extra={"bulk_pull_id": job.id, "method": found.method, "count": len(found.members)})
        return "done"

    def _ended(self, job: GroupPullJob, error: Exception, beat: Heartbeat) -> str:
        """A pull that raised: given back when stopping, left to its new owner when the lease was
        lost, otherwise failed with the reason (the EHR's refusal; for a local failure, its kind)."""
        if self._stop.is_set() or beat.lost:
            return self._interrupted(job, lost=beat.lost)
        reason = error.message if isinstance(error, FhirMigraineError) else \
            f"the pull failed on this machine ({type(error).__name__}); see the service's logs"
        if not self.jobs.finish(job, error=reason):
            return "lost"
        log.warning("group pull failed", extra={"bulk_pull_id": job.id, "error": type(error).__name__})
        return "failed"

    def _interrupted(self, job: GroupPullJob, *, lost: bool = False) -> str:
        """A pull stopped half way: given back (``pending``) when this puller is stopping, else left
        to the puller that took its lease (``lost``)."""
        if self._stop.is_set() and not lost:
            self.jobs.release(job)
            return "pending"
        log.warning("group pull lost its lease", extra={"bulk_pull_id": job.id})
        return "lost"
