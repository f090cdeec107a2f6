"""The group puller: a background thread per service process that claims group pulls
(``ehr.group_pulls``), runs each through the gateway (FHIR Bulk Data, or one pull per member) and
stores each member's unmapped result as it is read, renewing its lease as it goes. Logs carry pull
ids, methods and counts only, never a patient or a resource.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from fhir_migraine.ehr.background import JobRunner
from fhir_migraine.ehr.bulk import GroupPull
from fhir_migraine.ehr.group_pulls import GroupPullJob, GroupPulls
from fhir_migraine.errors import FhirMigraineError
from fhir_migraine.inputs.orders import FindProtocol

log = logging.getLogger(__name__)


class Puller(Protocol):
    """What the group puller needs of the gateway (``gateway.EhrGateway``)."""

    def group_pull(self, group: str, *, since: str | None = ..., folder: str | None = ...,
                   alive: Any = ...) -> GroupPull: ...

    def unmapped(self, found: GroupPull, find_protocol: FindProtocol | None = ...) -> Any: ...


class GroupPuller(JobRunner):
    """Claims group pulls from ``jobs`` and runs them through ``gateway``; a thread when started,
    or driven by ``run_once``."""

    name = "group puller"
    leftover = "its group pull stays leased"
    log = log

    def __init__(self, jobs: GroupPulls, gateway: Puller, *, lease: float, retention_days: float,
                 interval: float = 1.0, folder: str | None = None, find_protocol: FindProtocol | None = None) -> None:
        super().__init__(interval=interval)
        self.jobs, self.gateway, self.lease = jobs, gateway, lease
        self.retention_days, self.folder, self.find_protocol = retention_days, folder, find_protocol

    def first(self) -> None:
        purged = self.jobs.purge(self.retention_days)
        if purged:
            log.info("group pulls purged", extra={"count": purged})

    def claim(self) -> GroupPullJob | None:
        return self.jobs.claim(self.lease)

    def process(self, job: GroupPullJob) -> str:
        """Run one claimed pull to its end; its state afterwards (``lost`` when another puller took
        it over, ``pending`` when this one is stopping)."""
        log.info("group pull claimed", extra={"bulk_pull_id": job.id})

        def alive() -> bool:
            return not self._stop.is_set() and self.jobs.renew(job, self.lease)

        try:
            found = self.gateway.group_pull(job.group, since=job.since, folder=self.folder, alive=alive)
            if not self.jobs.started(job, found.method, len(found.members), self.lease):
                return "lost"
            for position, result in enumerate(self.gateway.unmapped(found, self.find_protocol)):
                if self._stop.is_set():
                    self.jobs.release(job)
                    return "pending"
                if not self.jobs.add(job, position, result, self.lease):
                    log.warning("group pull lost its lease", extra={"bulk_pull_id": job.id})
                    return "lost"
        except FhirMigraineError as error:
            if self._stop.is_set():
                self.jobs.release(job)
                return "pending"
            self.jobs.finish(job, error=error.message)
            log.warning("group pull failed", extra={"bulk_pull_id": job.id, "error": type(error).__name__})
            return "failed"
        self.jobs.finish(job)
        log.info("group pull done", extra={"bulk_pull_id": job.id, "method": found.method, "count": len(found.members)})
        return "done"
