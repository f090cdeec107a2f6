"""The importer: a background thread per service process that reads claimed import jobs line by
line, maps chunks of diary entries and queues each chunk in the outbox, recording the progress
after every chunk. Logs carry import ids and counts only, never a line of the diary.

A chunk is queued before its progress is recorded: an importer killed between the two leaves the
job leased, and whoever takes it up when the lease runs out queues that chunk again, which is
harmless because every entry is a conditional create on its identifier. Invalid entries are
reported by line (line number, JSON path, message) and the valid ones of their chunk still go.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, BinaryIO

from fhir_migraine import operations
from fhir_migraine.documents import parse_json
from fhir_migraine.ehr.background import JobRunner
from fhir_migraine.ehr.imports import ImportJobs, Job, Progress
from fhir_migraine.errors import EhrUnsupported, FhirMigraineError, InputError, Problem, ProfileError, UnreadableInput
from fhir_migraine.inputs.diary_files import Located
from fhir_migraine.mapping.attacks import Ledger

log = logging.getLogger(__name__)
Resource = dict[str, Any]
#: Diary entries mapped and queued together: one outbox item, a few transactions.
CHUNK_ENTRIES = 100
#: Bytes read at a time while skipping the rest of a line that is too long.
SKIP_SIZE = 64 * 1024


class Importer(JobRunner):
    """Claims import jobs from ``jobs`` and hands each chunk's Bundle to ``queue`` (which stores
    it in the outbox and answers its id); a thread when started, or driven by ``run_once``."""

    name = "importer"
    leftover = "its job stays leased"
    log = log

    def __init__(self, jobs: ImportJobs, queue: Callable[[Resource], str], *, lease: float,
                 interval: float = 0.5, chunk_entries: int = CHUNK_ENTRIES, max_line_bytes: int = 4 * 1024 * 1024) -> None:
        super().__init__(interval=interval)
        self.jobs, self.queue, self.lease = jobs, queue, lease
        self.chunk_entries, self.max_line_bytes = chunk_entries, max_line_bytes

    def first(self) -> None:
        self.jobs.sweep()

    def claim(self) -> Job | None:
        return self.jobs.claim(self.lease)

    def process(self, job: Job) -> str:
        """Import a claimed job from its last recorded chunk; its state afterwards (``lost`` when
        another importer took it over)."""
        log.info("import claimed", extra={"import_id": job.id, "lines": job.lines_read})
        try:
            handle = open(job.path, "rb")  # noqa: SIM115 - closed below, across the chunks
        except OSError as exc:
            self.jobs.finish(job, error=f"the uploaded file cannot be read ({type(exc).__name__})")
            log.error("import failed", extra={"import_id": job.id, "error": type(exc).__name__})
            return "failed"
        with handle:
            # The attacks of the lines already imported (a job taken over after a stop or a crash),
            # which later lines may continue.
            ledger = _replayed(handle, job.offset, self.max_line_bytes)
            handle.seek(job.offset)
            number = job.lines_read
            while True:
                if self._stop.is_set():
                    self.jobs.release(job)
                    log.info("import released", extra={"import_id": job.id, "lines": number})
                    return "pending"
                entries, problems, number, ended = self._read_chunk(handle, number)
                bundle, queued, refused = map_chunk(entries, ledger)
                problems = sorted(problems + refused, key=_line)
                try:
                    outbox_id = self.queue(bundle) if bundle is not None else None
                except EhrUnsupported as exc:  # the EHR cannot take what the file holds: no chunk can go
                    self.jobs.finish(job, error=exc.message)
                    log.error("import failed", extra={"import_id": job.id, "error": type(exc).__name__})
                    return "failed"
                invalid = len({p.location for p in problems})
                progress = Progress(handle.tell(), number, queued, outbox_id, invalid, problems)
                if not self.jobs.record(job, progress, self.lease):
                    log.warning("import lease lost", extra={"import_id": job.id, "lines": number})
                    return "lost"
                if ended:
                    break
        if not self.jobs.finish(job):
            return "lost"
        done = self.jobs.get(job.id)
        log.info("import done", extra={"import_id": job.id, "lines": number,
                                       "entries": done.entries_queued if done else None,
                                       "invalid": done.invalid if done else None})
        return "done"

    def _read_chunk(self, handle: BinaryIO, number: int) -> tuple[list[Located], list[Problem], int, bool]:
        """Up to ``chunk_entries`` entries from the file's next lines: the entries, the problems of
        lines that are not JSON objects, the last line number read, and whether the file ended."""
        entries: list[Located] = []
        problems: list[Problem] = []
        while len(entries) + len(problems) < self.chunk_entries:
            line = handle.readline(self.max_line_bytes + 1)
            if not line:
                return entries, problems, number, True
            number += 1
            where = f"line {number}"
            if len(line) > self.max_line_bytes and not line.endswith(b"\n"):
                _skip_line(handle)
                problems.append(Problem("$", f"is longer than {self.max_line_bytes} bytes", where))
                continue
            if not line.strip():
                continue
            try:  # the strict reading of every JSON input (duplicate keys, depth, long numbers…)
                entries.append(Located(parse_json(line, "diary", location=where), "$", line=number))
            except UnreadableInput as exc:
                problems += exc.problems
        return entries, problems, number, False


def _replayed(handle: BinaryIO, offset: int, max_line_bytes: int) -> Ledger:
    """The ledger of the attacks the file's lines before ``offset`` record (valid lines only)."""
    ledger = Ledger()
    handle.seek(0)
    while handle.tell() < offset and (line := handle.readline(max_line_bytes + 1)):
        try:
            operations.load_diary([Located(parse_json(line, "diary"), "$")], ledger=ledger)
        except FhirMigraineError:
            continue
    return ledger


def map_chunk(entries: list[Located], ledger: Ledger | None = None) -> tuple[Resource | None, int, list[Problem]]:
    """One transaction Bundle of the valid entries (None when there is none), how many entries it
    holds, and the problems of the invalid ones, each with its line. ``ledger``: the attacks of the
    chunks before, which receives this chunk's."""
    ledger = ledger if ledger is not None else Ledger()
    problems: list[Problem] = []
    remaining = entries
    while remaining:
        trial = ledger.copy()
        try:
            bundle = operations.map_diary(remaining, ledger=trial)
            ledger.update(trial)
            return bundle, len(remaining), problems
        except InputError as exc:
            found = {p.location for p in exc.problems}
            kept = [e for e in remaining if f"line {e.line}" not in found]
            if len(kept) == len(remaining):  # problems that name no line of the chunk: entry by entry
                break
            problems += exc.problems
            remaining = kept
        except Exception:  # noqa: BLE001 - a Bundle that breaks a profile, or a defect: find its entries
            break
    # Entry by entry, so one entry the mapping cannot handle does not hold back the others.
    good: list[Located] = []
    running = ledger.copy()  # the attacks of the good entries so far, which the next may continue
    for entry in remaining:
        where = f"line {entry.line}"
        trial = running.copy()
        try:
            operations.map_diary([entry], ledger=trial)
        except (InputError, ProfileError) as exc:
            problems += [Problem(p.path, p.message, where) for p in exc.problems] or [Problem("$", exc.message, where)]
            continue
        except Exception as exc:  # noqa: BLE001 - reported on its line by type only (no PHI)
            problems.append(Problem("$", f"could not be mapped ({type(exc).__name__})", where))
            continue
        running.update(trial)
        good.append(entry)
    return (operations.map_diary(good, ledger=ledger) if good else None), len(good), problems


def _line(problem: Problem) -> int:
    return int((problem.location or "line 0").split()[-1])


def _skip_line(handle: BinaryIO) -> None:
    while (part := handle.readline(SKIP_SIZE)) and not part.endswith(b"\n"):
        pass
