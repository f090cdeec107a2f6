"""Bulk diary imports: the NDJSON upload kept on disk and its job in SQLite, claimed under a lease.

An upload is streamed to a file (``imports/`` beside the database: folder 0700, files 0600) and
a job row is committed before the request is answered. The importer of a service process (see
``ehr.importer``) claims a pending job, or one whose lease ran out, and records its progress
after every chunk: the byte offset and line number it has reached, the entries queued, the
outbox items made and the invalid lines. A job taken up again resumes from the last recorded
chunk.

    pending --claim--> mapping --end of file--> done (file deleted)
       ^                  |
       +---released-------+--unreadable file--> failed (file deleted)
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fhir_migraine.errors import Problem, TooLarge, UnreadableInput
from fhir_migraine.store import MEMORY, iso_utc, open_store

log = logging.getLogger(__name__)
STATES = ("pending", "mapping", "done", "failed")
#: Problems reported in full per job; the rest are only counted.
KEPT_PROBLEMS = 100
#: Bytes read from the request at a time while the upload is written to disk.
READ_SIZE = 64 * 1024
LIMIT_VARIABLE = "FHIR_MIGRAINE_MAX_IMPORT_BYTES"
#: An upload without an unfinished job is deleted once it is this old (a live upload is younger).
ORPHAN_AGE_S = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS imports (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    offset INTEGER NOT NULL DEFAULT 0,
    lines_read INTEGER NOT NULL DEFAULT 0,
    entries_queued INTEGER NOT NULL DEFAULT 0,
    invalid INTEGER NOT NULL DEFAULT 0,
    problems TEXT NOT NULL DEFAULT '[]',
    problems_omitted INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    lease_token TEXT,
    lease_until REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS imports_due ON imports (state, lease_until);
CREATE TABLE IF NOT EXISTS import_items (
    import_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    outbox_id TEXT NOT NULL,
    PRIMARY KEY (import_id, position)
);
"""


@dataclass(frozen=True)
class Job:
    """One import job as stored; ``token`` is the lease of the importer that claimed it."""

    id: str
    state: str
    path: str
    bytes: int
    offset: int
    lines_read: int
    entries_queued: int
    invalid: int
    problems: list[dict[str, str]]
    problems_omitted: int
    error: str | None
    token: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Progress:
    """What one chunk did: where the file has been read to, what was queued, what was invalid."""

    offset: int
    lines_read: int
    entries: int
    outbox_id: str | None
    invalid: int
    problems: list[Problem]


class ImportJobs:
    """The import jobs and their upload folder; safe to share between threads and processes."""

    def __init__(self, database: str, *, clock: Callable[[], float] = time.time, folder: str | None = None) -> None:
        self.clock = clock
        self._store = open_store(database, _SCHEMA)
        # On PostgreSQL, instances share jobs: one claimed by another is skipped, not waited for.
        self._skip_locked = " FOR UPDATE SKIP LOCKED" if self._store.postgres else ""
        if folder is not None:  # instances that share jobs (PostgreSQL) must share this folder
            self.folder = Path(folder)
        elif database == MEMORY:
            self.folder = Path(tempfile.mkdtemp(prefix="fhir-migraine-imports-"))
        elif self._store.postgres:
            self.folder = Path("var/imports")
        else:
            self.folder = Path(database).parent / "imports"
        # The uploads are diaries (PHI): only the service's user may list or read them.
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.chmod(0o700)

    # --- the upload ---------------------------------------------------------------------------

    def receive(self, stream: IO[bytes], *, limit: int) -> Job:
        """Write an NDJSON upload to disk as it arrives (never whole in memory), then commit its
        job; the job, ``pending``. The body must be UTF-8 and begin with a JSON object (400), and
        at most ``limit`` bytes (413); a refused or cut upload leaves no file behind."""
        job_id = str(uuid.uuid4())
        path = self.folder / f"{job_id}.ndjson"
        size = 0
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                decoder = codecs.getincrementaldecoder("utf-8")("strict")
                first: str | None = None
                while chunk := stream.read(READ_SIZE):
                    if size + len(chunk) > limit:
                        raise too_large(limit)
                    text = decoder.decode(chunk)
                    size += len(chunk)
                    if first is None and text.strip():
                        first = text.lstrip()[0]
                    out.write(chunk)
                decoder.decode(b"", final=True)
                if first is None:
                    raise UnreadableInput.of([Problem("$", "the request body is empty")], "diary")
                if first != "{":
                    message = "is not NDJSON: every line must be one JSON object (a diary entry)"
                    raise UnreadableInput.of([Problem("$", message, "line 1")], "diary")
                out.flush()
                os.fsync(out.fileno())  # the job row below promises the file survives a crash
        except UnicodeDecodeError:
            path.unlink(missing_ok=True)
            message = f"is not UTF-8 text (an invalid byte after byte {size} of the body)"
            raise UnreadableInput.of([Problem("$", message)], "diary") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        now = self.clock()
        self._store.write(
            "INSERT INTO imports (id, state, path, bytes, created_at, updated_at) VALUES (?, 'pending', ?, ?, ?, ?)",
            (job_id, str(path), size, now, now),
        )
        log.info("import received", extra={"import_id": job_id, "count": size})
        job = self.get(job_id)
        assert job is not None
        return job

    def sweep(self, *, older_than: float = ORPHAN_AGE_S) -> int:
        """Delete uploads that no unfinished job will read (a process died between writing the
        file and committing its job, or between finishing a job and deleting its file), once they
        are ``older_than`` seconds old, so an upload still arriving is never touched; how many."""
        unfinished = {r[0] for r in self._store.all("SELECT id FROM imports WHERE state IN ('pending', 'mapping')")}
        swept = 0
        for path in self.folder.glob("*.ndjson"):
            try:
                old = path.stat().st_mtime < self.clock() - older_than
            except FileNotFoundError:
                continue
            if old and path.stem not in unfinished:
                path.unlink(missing_ok=True)
                swept += 1
        if swept:
            log.info("import uploads swept", extra={"count": swept})
        return swept

    # --- reading ------------------------------------------------------------------------------

    def _row(self, row: tuple[Any, ...] | None) -> Job | None:
        if row is None:
            return None
        (id_, state, path, size, offset, lines_read, entries_queued, invalid, problems, omitted, error, token,
         _lease_until, created_at, updated_at) = row
        return Job(id_, state, path, size, offset, lines_read, entries_queued, invalid, json.loads(problems),
                   omitted, error, token, created_at, updated_at)

    def get(self, job_id: str) -> Job | None:
        return self._row(self._store.one("SELECT * FROM imports WHERE id = ?", (job_id,)))

    def outbox_ids(self, job_id: str) -> list[str]:
        rows = self._store.all("SELECT outbox_id FROM import_items WHERE import_id = ? ORDER BY position", (job_id,))
        return [r[0] for r in rows]

    def summary(self, job_id: str) -> dict[str, Any] | None:
        """What ``GET /imports/{id}`` shows: state and progress, the invalid lines, the outbox items."""
        job = self.get(job_id)
        if job is None:
            return None
        items = self.outbox_ids(job_id)
        found: dict[str, Any] = {
            "import_id": job.id,
            "state": job.state,
            "bytes": job.bytes,
            "bytes_read": job.offset,
            "lines_read": job.lines_read,
            "entries_queued": job.entries_queued,
            "invalid": job.invalid,
            "problems": job.problems,
            "problems_omitted": job.problems_omitted,
            "outbox_items": len(items),
            "outbox_ids": items,
            "created_at": iso_utc(job.created_at),
            "updated_at": iso_utc(job.updated_at),
        }
        if job.error:
            found["error"] = job.error
        return found

    # --- the importer's side ------------------------------------------------------------------

    def claim(self, lease: float) -> Job | None:
        """Take the oldest pending job, or one whose importer's lease ran out, for ``lease`` seconds."""
        now = self.clock()
        token = uuid.uuid4().hex
        with self._store.transaction() as db:
            row = db.execute(
                "SELECT id FROM imports WHERE state = 'pending' OR (state = 'mapping' AND lease_until < ?)"
                f" ORDER BY created_at LIMIT 1{self._skip_locked}",
                (now,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE imports SET state = 'mapping', lease_token = ?, lease_until = ?, updated_at = ? WHERE id = ?",
                (token, now + lease, now, row[0]),
            )
        return self.get(row[0])

    def record(self, job: Job, progress: Progress, lease: float) -> bool:
        """Record one chunk's progress and renew the lease, in one transaction; False (nothing
        recorded) when the lease was lost to another importer, which then owns the job."""
        now = self.clock()
        with self._store.transaction() as db:
            row = db.execute(f"SELECT problems, problems_omitted FROM imports WHERE id = ? AND lease_token = ?{self._store.lock}",
                             (job.id, job.token)).fetchone()
            if row is None:
                return False
            kept: list[dict[str, str]] = json.loads(row[0])
            room = max(0, KEPT_PROBLEMS - len(kept))
            kept += [p.as_dict() for p in progress.problems[:room]]
            omitted = row[1] + max(0, len(progress.problems) - room)
            if progress.outbox_id is not None:
                position = db.execute("SELECT count(*) FROM import_items WHERE import_id = ?", (job.id,)).fetchone()[0]
                db.execute("INSERT INTO import_items (import_id, position, outbox_id) VALUES (?, ?, ?)",
                           (job.id, position, progress.outbox_id))
            db.execute(
                'UPDATE imports SET "offset" = ?,'
                " lines_read = ?, entries_queued = entries_queued + ?,"
                " invalid = invalid + ?, problems = ?, problems_omitted = ?, lease_until = ?, updated_at = ?"
                " WHERE id = ?",
                (progress.offset, progress.lines_read, progress.entries, progress.invalid,
                 json.dumps(kept, ensure_ascii=False), omitted, now + lease, now, job.id),
            )
        return True

    def release(self, job: Job) -> None:
        """Give a claimed job back, pending (its importer is stopping between two chunks)."""
        self._end(job, "pending", None)

    def finish(self, job: Job, *, error: str | None = None) -> bool:
        """The job is ``done`` (or ``failed`` with ``error``) and its file deleted; False when the
        lease was lost (the new owner finishes it)."""
        if not self._end(job, "failed" if error else "done", error):
            return False
        Path(job.path).unlink(missing_ok=True)
        return True

    def _end(self, job: Job, state: str, error: str | None) -> bool:
        return self._store.write(
            "UPDATE imports SET state = ?, error = ?, lease_token = NULL, lease_until = NULL, updated_at = ?"
            " WHERE id = ? AND lease_token = ?",
            (state, error, self.clock(), job.id, job.token),
        ) == 1


def too_large(limit: int) -> TooLarge:
    """The 413 of an upload over ``limit`` bytes, naming the setting."""
    return TooLarge(
        f"The upload is larger than the {limit} bytes an import may carry ({LIMIT_VARIABLE}).",
        [Problem("$", f"is larger than {limit} bytes")],
    )
