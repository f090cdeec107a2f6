"""The group pulls asked of the service (``POST /bulk-pulls``): one job row per pull, claimed under
a lease by the group puller of a service process (``ehr.group_puller``), and each member's result
stored as it is read, so any instance sharing the database answers ``GET /bulk-pulls/{id}``.

    pending --claim--> pulling --every member stored--> done
       ^                  |
       +--lease ran out---+--the EHR refused or failed--> failed (its reason kept)

A job taken over after its lease ran out (its instance died) starts again from the kick-off; what
the earlier attempt stored is deleted when it is claimed. After ``MAX_ATTEMPTS`` claims that did not
finish it, it is failed instead (a pull that kills its process is not run for ever). Finished jobs and their
results (PHI: diaries and orders) are deleted after ``FHIR_MIGRAINE_RETENTION_DAYS``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fhir_migraine.store import iso_utc, open_store

STATES = ("pending", "pulling", "done", "failed")
#: Claims of one pull that may end without finishing it (its process died, or lost the lease)
#: before it is failed rather than exported again.
MAX_ATTEMPTS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS group_pulls (
    id TEXT PRIMARY KEY,
    group_ref TEXT NOT NULL,
    since TEXT,
    state TEXT NOT NULL,
    method TEXT,
    members INTEGER NOT NULL DEFAULT 0,
    patients_read INTEGER NOT NULL DEFAULT 0,
    resources INTEGER NOT NULL DEFAULT 0,
    invalid INTEGER NOT NULL DEFAULT 0,
    incomplete INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT,
    lease_until REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS group_pulls_due ON group_pulls (state, lease_until);
CREATE TABLE IF NOT EXISTS group_pull_patients (
    pull_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    patient TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (pull_id, position)
);
"""


@dataclass(frozen=True)
class GroupPullJob:
    """One group pull as claimed: ``token`` is the lease of the puller holding it."""

    id: str
    group: str
    since: str | None
    token: str | None


class GroupPulls:
    """The group pull jobs and their members' results; safe to share between threads and processes."""

    def __init__(self, database: str, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._store = open_store(database, _SCHEMA)
        self._skip_locked = " FOR UPDATE SKIP LOCKED" if self._store.postgres else ""

    def create(self, group: str, since: str | None) -> str:
        """A new pending pull of ``group`` (a checked ``Group/<id>``); its id."""
        job_id, now = str(uuid.uuid4()), self.clock()
        self._store.write(
            "INSERT INTO group_pulls (id, group_ref, since, state, created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?)",
            (job_id, group, since, now, now),
        )
        return job_id

    def summary(self, job_id: str) -> dict[str, Any] | None:
        """What ``GET /bulk-pulls/{id}`` shows; None for an unknown id."""
        row = self._store.one(
            "SELECT id, group_ref, since, state, method, members, patients_read, resources, invalid, incomplete,"
            " error, created_at, updated_at FROM group_pulls WHERE id = ?", (job_id,))
        if row is None:
            return None
        (id_, group, since, state, method, members, read, resources, invalid, incomplete, error, created, updated) = row
        found: dict[str, Any] = {
            "bulk_pull_id": id_, "group": group, "state": state, "method": method, "members": members,
            "patients_read": read, "resources": resources, "invalid": invalid, "incomplete": incomplete,
            "created_at": iso_utc(created), "updated_at": iso_utc(updated),
        }
        if since is not None:
            found["since"] = since
        if error is not None:
            found["error"] = error
        if state == "done":
            found["patients"] = f"/bulk-pulls/{id_}/patients"
        return found

    def results(self, job_id: str) -> Iterator[str]:
        """The stored members' results of a pull, in member order, as JSON text (one per member)."""
        position = -1
        while True:  # a page at a time: a group of thousands is never read whole
            rows = self._store.all(
                "SELECT position, result FROM group_pull_patients WHERE pull_id = ? AND position > ?"
                " ORDER BY position LIMIT 200", (job_id, position))
            if not rows:
                return
            for position, result in rows:  # noqa: B007 - the last position read starts the next page
                yield str(result)

    # --- the puller's side --------------------------------------------------------------------

    def claim(self, lease: float) -> GroupPullJob | None:
        """Take the oldest pending pull, or one whose puller's lease ran out, for ``lease`` seconds;
        what an earlier attempt stored of it is deleted. A pull claimed ``MAX_ATTEMPTS`` times
        already is failed instead, and the next one looked at."""
        while True:
            now, token = self.clock(), uuid.uuid4().hex
            with self._store.transaction() as db:
                row = db.execute(
                    "SELECT id, group_ref, since, attempts FROM group_pulls WHERE state = 'pending'"
                    " OR (state = 'pulling' AND lease_until < ?)"
                    f" ORDER BY created_at LIMIT 1{self._skip_locked}", (now,)).fetchone()
                if row is None:
                    return None
                db.execute("DELETE FROM group_pull_patients WHERE pull_id = ?", (row[0],))
                if row[3] >= MAX_ATTEMPTS:
                    db.execute(
                        "UPDATE group_pulls SET state = 'failed', error = ?, lease_token = NULL, lease_until = NULL,"
                        " updated_at = ? WHERE id = ?",
                        (f"given up after {row[3]} attempts that did not finish (each process stopped or died "
                         "during the pull)", now, row[0]))
                    continue
                db.execute(
                    "UPDATE group_pulls SET state = 'pulling', method = NULL, members = 0, patients_read = 0, resources = 0,"
                    " invalid = 0, incomplete = 0, attempts = attempts + 1, lease_token = ?, lease_until = ?, updated_at = ?"
                    " WHERE id = ?", (token, now + lease, now, row[0]))
            return GroupPullJob(row[0], row[1], row[2], token)

    def renew(self, job: GroupPullJob, lease: float) -> bool:
        """Extend the lease; False when it was lost (another puller owns the job now)."""
        now = self.clock()
        return self._store.write("UPDATE group_pulls SET lease_until = ?, updated_at = ? WHERE id = ? AND lease_token = ?",
                                 (now + lease, now, job.id, job.token)) == 1

    def started(self, job: GroupPullJob, method: str, members: int, lease: float) -> bool:
        """Record how the pull is made and how many members it has; False when the lease was lost."""
        now = self.clock()
        return self._store.write(
            "UPDATE group_pulls SET method = ?, members = ?, lease_until = ?, updated_at = ? WHERE id = ? AND lease_token = ?",
            (method, members, now + lease, now, job.id, job.token)) == 1

    def add(self, job: GroupPullJob, position: int, result: dict[str, Any], lease: float) -> bool:
        """Store one member's result and renew the lease, in one transaction; False (nothing stored)
        when the lease was lost."""
        now = self.clock()
        with self._store.transaction() as db:
            owned = db.execute(f"SELECT id FROM group_pulls WHERE id = ? AND lease_token = ?{self._store.lock}",
                               (job.id, job.token)).fetchone()
            if owned is None:
                return False
            db.execute("INSERT INTO group_pull_patients (pull_id, position, patient, result) VALUES (?, ?, ?, ?)",
                       (job.id, position, result["patient"], json.dumps(result, ensure_ascii=False, separators=(",", ":"))))
            db.execute(
                "UPDATE group_pulls SET patients_read = patients_read + 1, resources = resources + ?,"
                " invalid = invalid + ?, incomplete = incomplete + ?, lease_until = ?, updated_at = ? WHERE id = ?",
                (result["resources"], len(result["invalid"]), len(result["incomplete"]), now + lease, now, job.id))
        return True

    def finish(self, job: GroupPullJob, *, error: str | None = None) -> bool:
        """The pull is ``done`` (or ``failed`` with ``error``); False when the lease was lost."""
        return self._store.write(
            "UPDATE group_pulls SET state = ?, error = ?, lease_token = NULL, lease_until = NULL, updated_at = ?"
            " WHERE id = ? AND lease_token = ?",
            ("failed" if error else "done", error, self.clock(), job.id, job.token)) == 1

    def release(self, job: GroupPullJob) -> None:
        """Give a claimed pull back, pending (its puller is stopping: the attempt is not counted);
        another starts it again."""
        self._store.write(
            "UPDATE group_pulls SET state = 'pending', attempts = attempts - 1, lease_token = NULL, lease_until = NULL,"
            " updated_at = ?"
            " WHERE id = ? AND lease_token = ?", (self.clock(), job.id, job.token))

    def purge(self, older_than_days: float) -> int:
        """Delete finished pulls (and their results) last changed more than ``older_than_days`` ago; how many."""
        cutoff = self.clock() - older_than_days * 86400
        with self._store.transaction() as db:
            db.execute("DELETE FROM group_pull_patients WHERE pull_id IN (SELECT id FROM group_pulls"
                       " WHERE state IN ('done', 'failed') AND updated_at < ?)", (cutoff,))
            gone = db.execute("DELETE FROM group_pulls WHERE state IN ('done', 'failed') AND updated_at < ?",
                              (cutoff,)).rowcount
        return int(gone)
