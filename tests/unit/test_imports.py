"""Bulk diary imports: the upload on disk, the jobs under a lease, the importer's chunks, resume,
invalid lines and the deletion of the file."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine.ehr.importer import Importer
from fhir_migraine.ehr.imports import KEPT_PROBLEMS, ImportJobs, Job
from fhir_migraine.errors import EhrUnsupported, TooLarge, UnreadableInput
from fhir_migraine.mapping.fhir import identifiers

LEASE = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def entry(n: int, *, patient: str = "Patient/123", intensity: int = 5) -> dict[str, Any]:
    day = f"2026-{1 + n // 28 % 12:02d}-{1 + n % 28:02d}"
    return {"entry_id": f"bulk-{n}", "patient": {"reference": patient}, "date": day,
            "headache": {"start": f"{day}T06:30:00Z", "peak_intensity": intensity, "symptoms": ["nausea"]}}


def ndjson(*documents: Any) -> bytes:
    return b"".join((d if isinstance(d, bytes) else json.dumps(d).encode()) + b"\n" for d in documents)


class Queue:
    """Stands for the outbox: keeps each queued Bundle and answers an id."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.bundles: list[dict[str, Any]] = []
        self.fail_at = fail_at

    def __call__(self, bundle: dict[str, Any]) -> str:
        if self.fail_at is not None and len(self.bundles) == self.fail_at:
            raise KeyboardInterrupt("the process dies here")
        self.bundles.append(bundle)
        return f"outbox-{len(self.bundles)}"

    def entry_ids(self) -> list[str]:
        """The diary entries queued, in order, by the identifier of their day Observation."""
        found = []
        for bundle in self.bundles:
            for e in bundle["entry"]:
                value = identifiers(e["resource"])[0]["value"]
                if "/" not in value:  # the day Observation's identifier is the entry id itself
                    found.append(value)
        return found


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jobs(tmp_path: Path, clock: Clock, database: str) -> ImportJobs:
    """The jobs on each store (SQLite, then PostgreSQL with the upload folder set)."""
    if database.startswith("postgresql://"):
        return ImportJobs(database, clock=clock, folder=str(tmp_path / "db" / "imports"))
    return ImportJobs(str(tmp_path / "db" / "service.sqlite3"), clock=clock)


def importer(jobs: ImportJobs, queue: Queue, **options: Any) -> Importer:
    return Importer(jobs, queue, lease=LEASE, interval=0.01, **options)


def upload(jobs: ImportJobs, body: bytes, limit: int = 10**9) -> Job:
    return jobs.receive(io.BytesIO(body), limit=limit)


# --- the upload --------------------------------------------------------------------------------


def test_an_upload_is_kept_in_a_private_folder_as_a_private_file(jobs: ImportJobs) -> None:
    job = upload(jobs, ndjson(entry(1), entry(2)))
    assert job.state == "pending" and job.bytes == len(ndjson(entry(1), entry(2)))
    assert Path(job.path).read_bytes() == ndjson(entry(1), entry(2))
    assert Path(job.path).parent == jobs.folder == Path(jobs.folder).parent / "imports"
    assert stat.S_IMODE(jobs.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(job.path).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the request body is empty"),
        (b"  \n\n ", "the request body is empty"),
        (b'[{"entry_id": "a"}]\n', "is not NDJSON"),
        (b'{"entry_id": "caf\xe9"}\n', "is not UTF-8"),
        (b'{"entry_id": "a"}\n\xe2\x82', "is not UTF-8"),  # ends inside a character
    ],
)
def test_an_upload_that_is_not_utf8_ndjson_is_refused_and_leaves_no_file(jobs: ImportJobs, body: bytes,
                                                                         message: str) -> None:
    with pytest.raises(UnreadableInput) as raised:
        upload(jobs, body)
    assert message in raised.value.problems[0].message
    assert list(jobs.folder.iterdir()) == []


def test_an_upload_over_the_limit_is_refused_and_leaves_no_file(jobs: ImportJobs) -> None:
    body = ndjson(*(entry(n) for n in range(50)))
    with pytest.raises(TooLarge, match="FHIR_MIGRAINE_MAX_IMPORT_BYTES"):
        upload(jobs, body, limit=len(body) - 1)
    assert list(jobs.folder.iterdir()) == []
    assert upload(jobs, body, limit=len(body)).bytes == len(body)


# --- the importer ------------------------------------------------------------------------------


def test_entries_are_queued_in_chunks_with_progress_then_the_file_is_deleted(jobs: ImportJobs) -> None:
    job = upload(jobs, ndjson(*(entry(n) for n in range(250))))
    queue = Queue()
    assert importer(jobs, queue, chunk_entries=100).run_once() == 1
    assert [len({identifiers(e["resource"])[0]["value"].split("/")[0] for e in b["entry"]}) for b in queue.bundles] \
        == [100, 100, 50]  # entries per chunk
    assert queue.entry_ids() == [f"bulk-{n}" for n in range(250)]
    found = jobs.summary(job.id)
    assert found is not None
    assert (found["state"], found["lines_read"], found["entries_queued"], found["invalid"]) == ("done", 250, 250, 0)
    assert found["bytes_read"] == found["bytes"] == job.bytes
    assert found["outbox_ids"] == ["outbox-1", "outbox-2", "outbox-3"] and found["outbox_items"] == 3
    assert not Path(job.path).exists()
    assert importer(jobs, queue).run_once() == 0  # nothing left to claim


def test_progress_is_recorded_after_each_chunk(jobs: ImportJobs) -> None:
    job = upload(jobs, ndjson(*(entry(n) for n in range(30))))
    seen: list[tuple[int, int, int]] = []

    def queue(bundle: dict[str, Any]) -> str:
        now = jobs.get(job.id)
        assert now is not None
        seen.append((now.lines_read, now.entries_queued, len(jobs.outbox_ids(job.id))))
        return f"outbox-{len(seen)}"

    importer(jobs, queue, chunk_entries=10).run_once()
    assert seen == [(0, 0, 0), (10, 10, 1), (20, 20, 2)]


def test_a_job_whose_importer_died_is_resumed_from_its_last_chunk_when_the_lease_runs_out(
        jobs: ImportJobs, clock: Clock) -> None:
    job = upload(jobs, ndjson(*(entry(n) for n in range(25))))
    dying = Queue(fail_at=1)  # queues the first chunk, dies while queueing the second
    with pytest.raises(KeyboardInterrupt):
        importer(jobs, dying, chunk_entries=10).run_once()
    stuck = jobs.get(job.id)
    assert stuck is not None and (stuck.state, stuck.lines_read, stuck.entries_queued) == ("mapping", 10, 10)

    taker = Queue()
    assert importer(jobs, taker, chunk_entries=10).run_once() == 0  # still leased
    clock.now += LEASE + 1
    assert importer(jobs, taker, chunk_entries=10).run_once() == 1
    assert taker.entry_ids() == [f"bulk-{n}" for n in range(10, 25)]
    found = jobs.summary(job.id)
    assert found is not None
    assert (found["state"], found["lines_read"], found["entries_queued"]) == ("done", 25, 25)
    assert found["outbox_ids"] == ["outbox-1", "outbox-1", "outbox-2"]  # the first importer's, then the second's
    assert not Path(job.path).exists()


def test_an_importer_that_lost_its_lease_records_nothing_more(jobs: ImportJobs, clock: Clock) -> None:
    upload(jobs, ndjson(*(entry(n) for n in range(5))))
    first = jobs.claim(LEASE)
    clock.now += LEASE + 1
    second = jobs.claim(LEASE)
    assert first is not None and second is not None and first.id == second.id and first.token != second.token
    assert importer(jobs, Queue()).process(first) == "lost"
    assert importer(jobs, Queue()).process(second) == "done"
    found = jobs.get(second.id)
    assert found is not None and found.entries_queued == 5 and len(jobs.outbox_ids(found.id)) == 1


def test_invalid_lines_are_reported_by_line_and_path_and_the_valid_ones_still_go(jobs: ImportJobs) -> None:
    body = ndjson(
        entry(1),
        b'{"entry_id": "broken", ',                 # line 2: not JSON
        entry(3, intensity=11),                     # line 3: out of range
        b"",                                         # line 4: blank, skipped
        entry(5),
        entry(1),                                    # line 6: the same entry id again in its chunk
        b"[1, 2]",                                   # line 7: not an object
        entry(8),
        b'{"entry_id": "bulk-9", "entry_id": "bulk-10"}',  # line 9: a key twice
    )
    job = upload(jobs, body)
    queue = Queue()
    importer(jobs, queue, chunk_entries=100).run_once()
    assert queue.entry_ids() == ["bulk-1", "bulk-5", "bulk-8"]
    found = jobs.summary(job.id)
    assert found is not None
    assert (found["state"], found["lines_read"], found["entries_queued"], found["invalid"]) == ("done", 9, 3, 5)
    where = [(p["location"], p["path"]) for p in found["problems"]]
    assert where == [("line 2", "$"), ("line 3", "$.headache.peak_intensity"), ("line 6", "$.entry_id"), ("line 7", "$"),
                     ("line 9", "$.entry_id")]
    assert "is not valid JSON" in found["problems"][0]["message"]
    assert found["problems_omitted"] == 0


def test_an_entry_that_breaks_the_mapping_is_reported_on_its_line_and_its_chunk_still_goes(
        jobs: ImportJobs, monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_migraine import operations

    real = operations.map_diary

    def fragile(entries: list[Any], **options: Any) -> dict[str, Any]:
        if any(e.document.get("entry_id") == "bulk-2" for e in entries):
            raise RuntimeError("a defect")
        return real(entries, **options)

    monkeypatch.setattr(operations, "map_diary", fragile)
    job = upload(jobs, ndjson(entry(1), entry(2), entry(3)))
    queue = Queue()
    importer(jobs, queue).run_once()
    assert queue.entry_ids() == ["bulk-1", "bulk-3"]
    found = jobs.summary(job.id)
    assert found is not None and found["state"] == "done" and found["invalid"] == 1
    assert found["problems"] == [{"path": "$", "message": "could not be mapped (RuntimeError)", "location": "line 2"}]


def test_the_first_problems_are_kept_in_full_and_the_rest_counted(jobs: ImportJobs) -> None:
    job = upload(jobs, ndjson(entry(1)) + b"not json\n" * (KEPT_PROBLEMS + 30) + ndjson(entry(2)))
    queue = Queue()
    importer(jobs, queue, chunk_entries=40).run_once()
    found = jobs.summary(job.id)
    assert found is not None
    assert (found["invalid"], len(found["problems"]), found["problems_omitted"]) == (KEPT_PROBLEMS + 30, KEPT_PROBLEMS, 30)
    assert [p["location"] for p in found["problems"]] == [f"line {n}" for n in range(2, KEPT_PROBLEMS + 2)]
    assert queue.entry_ids() == ["bulk-1", "bulk-2"]


def test_a_line_longer_than_the_limit_is_reported_without_being_read_whole(jobs: ImportJobs) -> None:
    long_note = dict(entry(2), notes="x" * 5000)
    job = upload(jobs, ndjson(entry(1), long_note, entry(3)))
    queue = Queue()
    importer(jobs, queue, max_line_bytes=1024).run_once()
    assert queue.entry_ids() == ["bulk-1", "bulk-3"]
    found = jobs.summary(job.id)
    assert found is not None
    assert found["problems"] == [{"path": "$", "message": "is longer than 1024 bytes", "location": "line 2"}]


def test_a_job_whose_file_is_gone_fails_saying_why(jobs: ImportJobs) -> None:
    job = upload(jobs, ndjson(entry(1)))
    Path(job.path).unlink()
    importer(jobs, Queue()).run_once()
    found = jobs.summary(job.id)
    assert found is not None and found["state"] == "failed" and "cannot be read" in found["error"]


def test_a_job_for_an_ehr_that_cannot_take_the_diary_fails_saying_why(jobs: ImportJobs) -> None:
    job = upload(jobs, ndjson(*(entry(n) for n in range(3))))

    def refused(bundle: dict[str, Any]) -> str:
        raise EhrUnsupported("the EHR does not advertise create Observation in its CapabilityStatement")

    assert importer(jobs, refused).run_once() == 1  # type: ignore[arg-type]
    found = jobs.summary(job.id)
    assert found is not None and found["state"] == "failed" and "create Observation" in found["error"]


def test_a_stopping_importer_gives_its_job_back_between_chunks(jobs: ImportJobs) -> None:
    job = upload(jobs, ndjson(*(entry(n) for n in range(30))))
    worker = importer(jobs, Queue(), chunk_entries=10)

    def stop_after_first(bundle: dict[str, Any]) -> str:
        worker._stop.set()
        return "outbox-1"

    worker.queue = stop_after_first
    worker.run_once()
    found = jobs.get(job.id)
    assert found is not None and (found.state, found.lines_read, found.token) == ("pending", 10, None)
    assert Path(job.path).exists()
    rest = Queue()
    importer(jobs, rest, chunk_entries=10).run_once()
    assert rest.entry_ids() == [f"bulk-{n}" for n in range(10, 30)]


def test_the_importer_thread_imports_and_stops(jobs: ImportJobs) -> None:
    import time

    job = upload(jobs, ndjson(entry(1)))
    queue = Queue()
    worker = importer(jobs, queue).start()
    try:
        deadline = time.monotonic() + 30
        while (found := jobs.get(job.id)) is not None and found.state != "done" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        assert worker.stop(10)
    assert found is not None and found.state == "done" and queue.entry_ids() == ["bulk-1"]


def test_uploads_no_unfinished_job_will_read_are_swept_once_old(jobs: ImportJobs, clock: Clock) -> None:
    import os

    upload(jobs, ndjson(entry(1)))
    done = upload(jobs, ndjson(entry(2)))
    importer(jobs, Queue()).run_once()  # imports both
    waiting = upload(jobs, ndjson(entry(3)))
    left_over = jobs.folder / f"{done.id}.ndjson"  # its process died before deleting it
    left_over.write_bytes(ndjson(entry(2)))
    orphan = jobs.folder / "0f0f0f0f-no-job.ndjson"  # its process died before committing the job
    orphan.write_bytes(ndjson(entry(4)))
    arriving = jobs.folder / "1e1e1e1e-arriving.ndjson"
    arriving.write_bytes(b"")
    clock.now = os.stat(arriving).st_mtime + 10
    for path in (left_over, orphan, Path(waiting.path)):
        os.utime(path, (clock.now - 7200, clock.now - 7200))
    assert jobs.sweep(older_than=3600) == 2
    assert sorted(p.name for p in jobs.folder.iterdir()) == sorted([arriving.name, Path(waiting.path).name])
