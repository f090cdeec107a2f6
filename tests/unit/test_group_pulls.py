"""Group pull jobs on SQLite and PostgreSQL: claimed once under a lease, each member's result stored
while the lease holds, a pull taken over starting again, finished pulls purged after retention;
and the group puller thread's runs: done, failed with the reason, given back when stopping."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fhir_migraine.ehr.bulk import GroupPull
from fhir_migraine.ehr.group_puller import GroupPuller
from fhir_migraine.ehr.group_pulls import MAX_ATTEMPTS, GroupPulls
from fhir_migraine.errors import EhrUnavailable

Resource = dict[str, Any]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def result(patient: str, resources: int = 2) -> Resource:
    return {"patient": patient, "orders": [], "diary": [{"entry_id": patient}], "reports": [], "invalid": [],
            "incomplete": [{"resource": "x"}] if resources > 2 else [], "warnings": [], "resources": resources}


def test_a_pull_is_claimed_once_and_its_members_stored_in_order(database: str) -> None:
    clock = Clock()
    pulls = GroupPulls(database, clock=clock)
    pull_id = pulls.create("Group/7", "2026-11-01T00:00:00Z")
    assert pulls.summary(pull_id)["state"] == "pending"
    job = pulls.claim(30)
    assert job is not None and (job.id, job.group, job.since) == (pull_id, "Group/7", "2026-11-01T00:00:00Z")
    assert pulls.claim(30) is None, "a leased pull is not claimed twice"
    assert pulls.started(job, "bulk", 2, 30)
    assert pulls.add(job, 0, result("Patient/a"), 30)
    assert pulls.add(job, 1, result("Patient/b", 5), 30)
    assert pulls.finish(job)
    summary = pulls.summary(pull_id)
    assert {k: summary[k] for k in ("state", "method", "members", "patients_read", "resources", "invalid", "incomplete",
                                    "since", "patients")} == {
        "state": "done", "method": "bulk", "members": 2, "patients_read": 2, "resources": 7, "invalid": 0,
        "incomplete": 1, "since": "2026-11-01T00:00:00Z", "patients": f"/bulk-pulls/{pull_id}/patients"}
    assert [json.loads(line)["patient"] for line in pulls.results(pull_id)] == ["Patient/a", "Patient/b"]
    assert pulls.summary("nothing") is None


def test_a_pull_whose_lease_ran_out_is_taken_over_and_starts_again(database: str) -> None:
    clock = Clock()
    pulls = GroupPulls(database, clock=clock)
    pull_id = pulls.create("Group/7", None)
    first = pulls.claim(30)
    assert first is not None and pulls.add(first, 0, result("Patient/a"), 30)
    clock.now += 31
    second = pulls.claim(30)
    assert second is not None and second.id == pull_id and second.token != first.token
    assert list(pulls.results(pull_id)) == [], "what the first attempt stored is gone"
    assert not pulls.add(first, 1, result("Patient/b"), 30), "the first puller lost its lease"
    assert not pulls.renew(first, 30) and not pulls.finish(first)
    assert pulls.add(second, 0, result("Patient/a"), 30) and pulls.finish(second)
    assert pulls.summary(pull_id)["patients_read"] == 1


def test_finished_pulls_are_purged_after_retention_and_unfinished_ones_kept(database: str) -> None:
    clock = Clock()
    pulls = GroupPulls(database, clock=clock)
    done_id, pending_id = pulls.create("Group/1", None), pulls.create("Group/2", None)
    job = pulls.claim(30)
    assert job is not None and job.id == done_id
    pulls.add(job, 0, result("Patient/a"), 30)
    pulls.finish(job, error="the EHR refused")
    assert pulls.summary(done_id)["error"] == "the EHR refused"
    clock.now += 2 * 86400
    assert pulls.purge(1.0) == 1
    assert pulls.summary(done_id) is None and list(pulls.results(done_id)) == []
    assert pulls.summary(pending_id) is not None


def test_many_members_are_read_back_page_by_page(database: str) -> None:
    pulls = GroupPulls(database)
    pull_id = pulls.create("Group/7", None)
    job = pulls.claim(30)
    assert job is not None
    for position in range(450):
        assert pulls.add(job, position, result(f"Patient/{position}"), 30)
    assert [json.loads(line)["patient"] for line in pulls.results(pull_id)] == [f"Patient/{i}" for i in range(450)]


class Gateway:
    """A gateway double: ``members`` each pulled, or ``error`` raised by the pull."""

    def __init__(self, members: list[str], error: Exception | None = None) -> None:
        self.members, self.error = members, error
        self.asked: list[tuple[str, str | None]] = []

    def group_pull(self, group: str, *, since: str | None = None, folder: str | None = None,
                   alive: Any = None, sleep: Any = None) -> GroupPull:
        self.asked.append((group, since))
        if self.error is not None:
            raise self.error
        bundles = ((p, {"resourceType": "Bundle", "total": 1}) for p in self.members)
        return GroupPull(group, "per-patient", self.members, bundles)

    def unmapped(self, found: GroupPull, find_protocol: Any = None) -> Iterator[Resource]:
        for patient, _ in found.bundles:
            yield result(patient, 1)


def test_the_puller_runs_a_pull_to_its_end(database: str) -> None:
    pulls = GroupPulls(database)
    pull_id = pulls.create("Group/7", None)
    puller = GroupPuller(pulls, Gateway(["Patient/a", "Patient/b"]), lease=30, retention_days=30)
    assert puller.run_once() == 1
    summary = pulls.summary(pull_id)
    assert (summary["state"], summary["method"], summary["patients_read"], summary["resources"]) == (
        "done", "per-patient", 2, 2)


def test_a_pull_the_ehr_fails_is_failed_with_its_reason(database: str) -> None:
    pulls = GroupPulls(database)
    pull_id = pulls.create("Group/7", None)
    puller = GroupPuller(pulls, Gateway([], EhrUnavailable("could not connect to the EHR")), lease=30, retention_days=30)
    assert puller.run_once() == 1
    summary = pulls.summary(pull_id)
    assert (summary["state"], summary["error"]) == ("failed", "could not connect to the EHR")


@pytest.mark.parametrize("members", [[], ["Patient/a"]])
def test_a_stopping_puller_gives_its_pull_back(database: str, members: list[str]) -> None:
    pulls = GroupPulls(database)
    pull_id = pulls.create("Group/7", None)
    puller = GroupPuller(pulls, Gateway(members), lease=30, retention_days=30)
    job = pulls.claim(30)
    assert job is not None
    puller._stop.set()
    assert puller.process(job) == ("pending" if members else "done")
    assert pulls.summary(pull_id)["state"] == ("pending" if members else "done")


def test_a_pull_that_never_finishes_is_failed_after_its_attempts(database: str) -> None:
    clock = Clock()
    pulls = GroupPulls(database, clock=clock)
    pull_id = pulls.create("Group/7", None)
    for _ in range(MAX_ATTEMPTS):  # each claim ends with its process killed: the lease runs out
        assert pulls.claim(30) is not None
        clock.now += 31
    assert pulls.claim(30) is None
    summary = pulls.summary(pull_id)
    assert summary["state"] == "failed" and f"after {MAX_ATTEMPTS} attempts" in summary["error"]


def test_a_stop_gives_the_pull_back_without_counting_an_attempt(database: str) -> None:
    pulls = GroupPulls(database)
    pull_id = pulls.create("Group/7", None)
    for _ in range(MAX_ATTEMPTS + 2):
        job = pulls.claim(30)
        assert job is not None
        pulls.release(job)
    assert pulls.summary(pull_id)["state"] == "pending"


def test_a_local_failure_fails_the_pull_without_its_detail(database: str) -> None:
    pulls = GroupPulls(database)
    pull_id = pulls.create("Group/7", None)
    error = OSError(28, "No space left on device: /tmp/fhir-migraine-bulk-x/Patient-123.ndjson")
    puller = GroupPuller(pulls, Gateway([], error), lease=30, retention_days=30)
    assert puller.run_once() == 1
    summary = pulls.summary(pull_id)
    assert summary["state"] == "failed"
    assert summary["error"] == "the pull failed on this machine (OSError); see the service's logs"


def test_the_heartbeat_renews_the_lease_while_a_pull_runs_and_a_lost_lease_stops_it(database: str) -> None:
    pulls = GroupPulls(database)
    pull_id = pulls.create("Group/7", None)
    renewed = threading.Event()

    class Slow(Gateway):
        def group_pull(self, group: str, **kwargs: Any) -> GroupPull:
            # Longer than the lease: only the heartbeat keeps it; then another puller takes it over.
            assert renewed.wait(5)
            with pulls._store.transaction() as db:
                db.execute("UPDATE group_pulls SET lease_token = 'other' WHERE id = ?", (pull_id,))
            deadline = time.monotonic() + 5
            while kwargs["alive"]() and time.monotonic() < deadline:
                time.sleep(0.02)
            raise EhrUnavailable("the export was given up: the pull is stopping or was taken over")

    original = pulls.renew

    def renew(job: Any, lease: float) -> bool:
        answer = original(job, lease)
        renewed.set()
        return answer

    pulls.renew = renew  # type: ignore[method-assign]
    puller = GroupPuller(pulls, Slow([]), lease=0.3, retention_days=30)
    job = pulls.claim(0.3)
    assert job is not None
    assert puller.process(job) == "lost"
    assert pulls.summary(pull_id)["state"] == "pulling", "left to the puller that owns it now"
