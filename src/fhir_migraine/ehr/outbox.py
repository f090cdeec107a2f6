"""The durable outbox: transaction Bundles waiting to reach the EHR, in the service's database
(SQLite, or PostgreSQL shared by several instances).

An item is stored before its request is acknowledged, with the patients it touches. A worker
claims it with a lease and sends one part per claim: after a part that is not the last, the item
goes back to ``pending``, due now, behind the items already due (round robin, so a diary of
hundreds of parts never holds up another patient's order); after the last it is ``sent``. A
retryable failure puts it back as ``pending`` with a later ``next_attempt_at``; a rejection moves
it to ``dead`` with the EHR's OperationOutcome, an amendment the EHR will not take to
``conflict``, and ``revive`` puts a dead or conflict item back (its cause kept in its history).
The ``Patient/<id>`` each patient given by identifier was resolved to (``ehr.patients``) is
recorded on the item (``resolved``); its Bundles keep the identifier form. An item whose worker
died (its lease ran out) is claimed again: sending a part twice is harmless, because the answer
to each entry is recorded as it comes (``progress``) and the writer (``ehr.writer``) never
creates a resource the EHR already holds.

    pending --claim--> sending --last part sent--> sent --retention--> sent (Bundles purged)
       ^                  |
       +---part sent------+
       +---part split-----+
       +---retryable------+--rejected--> dead
       |                  +--amendment refused--> conflict
       +-----------revive (dead or conflict)-------+

Per-patient order, across threads, processes and instances: a claim takes the item due longest such that no earlier unfinished item shares a
patient with it and no item sharing a patient is being sent now; items of different patients go
in parallel. ``outbox_patients`` holds the patients of unfinished items only, so the check stays
cheap however many items have been sent. On SQLite claims are serialized (``BEGIN IMMEDIATE``);
on PostgreSQL concurrent claims skip the items another claim holds (``FOR UPDATE SKIP LOCKED``),
the lease then marks the item as taken, and queue numbers come from sequences.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fhir_migraine.errors import Conflict, NotFound
from fhir_migraine.mapping.fhir import identifiers
from fhir_migraine.store import Connection, iso_utc, open_store

STATES = ("pending", "sending", "sent", "dead", "conflict")
UNFINISHED = ("pending", "sending")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    parts TEXT NOT NULL,
    part_count INTEGER NOT NULL,
    resource_count INTEGER NOT NULL,
    next_part INTEGER NOT NULL DEFAULT 0,
    responses TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_until REAL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
"""

# The patients of unfinished items, with the item's place in the queue (``seq``): "is an item of
# this patient queued earlier still unfinished" is one index seek.
_PATIENTS = """
CREATE TABLE IF NOT EXISTS outbox_patients (
    patient TEXT NOT NULL,
    seq INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (patient, seq, item_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outbox_patients_item ON outbox_patients (item_id);
"""

#: Columns added after the first release; an older database gets them when it is opened.
_ADDED_COLUMNS = {
    "seq": "INTEGER NOT NULL DEFAULT 0",  # the order items were queued in (per patient, they go out in it)
    "patients": "TEXT NOT NULL DEFAULT '[]'",  # JSON list: what outbox_patients holds while unfinished
    "history": "TEXT NOT NULL DEFAULT '[]'",  # JSON list of earlier lives: a dead item put back
    "resume": "INTEGER NOT NULL DEFAULT 0",  # 1: the next claim continues the attempt (not a new one)
    "purged_at": "REAL",  # when the Bundles of a sent item were dropped (retention)
    "turn": "INTEGER NOT NULL DEFAULT 0",  # its place in the round robin: taken anew each time it is queued again
    "resolved": "TEXT NOT NULL DEFAULT '{}'",  # JSON: patient identifier (system|value) -> Patient/<id> (ehr.patients)
    "progress": "TEXT NOT NULL DEFAULT '{}'",  # JSON: fullUrl -> the EHR's answer, for each entry of the part being sent
}
_ADDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS outbox_unpurged ON outbox (state, updated_at) WHERE purged_at IS NULL",
    "CREATE INDEX IF NOT EXISTS outbox_state_age ON outbox (state, created_at)",
    "CREATE INDEX IF NOT EXISTS outbox_age ON outbox (created_at)",
    "CREATE INDEX IF NOT EXISTS outbox_turn ON outbox (turn)",  # max(turn): the back of the round robin
    "CREATE INDEX IF NOT EXISTS outbox_seq ON outbox (seq)",  # max(seq): the back of the queue
    # The queue in round-robin order, unfinished items only: a claim walks it from the front.
    "CREATE INDEX IF NOT EXISTS outbox_queue ON outbox (turn) WHERE state IN ('pending', 'sending')",
)
#: The next place at the back of the round robin, and in the queue: on SQLite the largest plus one
#: (inside a write transaction, which SQLite serializes, so it is unique); on PostgreSQL a sequence.
_NEXT = {False: ("(SELECT COALESCE(max(turn), 0) + 1 FROM outbox)", "(SELECT COALESCE(max(seq), 0) + 1 FROM outbox)"),
         True: ("nextval('outbox_turn_numbers')", "nextval('outbox_seq_numbers')")}

#: What a listing reads: never the Bundles (``parts``, ``responses``), which can be megabytes.
_SUMMARY_COLUMNS = (
    "id, kind, state, attempts, part_count, next_part, resource_count, next_attempt_at, last_error,"
    " created_at, updated_at, purged_at"
)

# The due item first in the round robin (walked along ``outbox_queue``, stopping at the first that
# qualifies) such that no item of its patients queued earlier is unfinished and none is being sent.
_CLAIM = """
SELECT o.id FROM outbox o {index}
WHERE o.state IN ('pending', 'sending')
  AND ((o.state = 'pending' AND o.next_attempt_at <= :now) OR (o.state = 'sending' AND o.lease_until < :now))
  {only}
  AND NOT EXISTS (
    SELECT 1 FROM outbox_patients mine
    JOIN outbox_patients other ON other.patient = mine.patient AND other.seq < mine.seq
    WHERE mine.item_id = o.id)
  AND NOT EXISTS (
    SELECT 1 FROM outbox_patients mine
    JOIN outbox_patients other ON other.patient = mine.patient AND other.item_id <> mine.item_id
    JOIN outbox e ON e.id = other.item_id
    WHERE mine.item_id = o.id AND e.state = 'sending' AND e.lease_until >= :now)
ORDER BY o.turn
LIMIT 1{skip}
"""


#: PostgreSQL's ``INDEXED BY`` for the claim: walk the queue index in turn order and stop at the
#: first item free to go, instead of testing every queued item and sorting them, which the planner
#: picks when its estimates are off (a new table) and which costs seconds with thousands queued.
#: One statement, so the claim costs one round trip more, not two.
QUEUE_WALK = ("SELECT set_config('enable_sort', 'off', true), set_config('enable_seqscan', 'off', true)",)


def claim_query(postgres: bool, only: bool = False) -> str:
    """The claim's SQL: the queue walked in turn order (by id with ``only``); rows locked and
    those another worker holds skipped on PostgreSQL."""
    index = "" if only or postgres else "INDEXED BY outbox_queue"
    skip = "\nFOR UPDATE OF o SKIP LOCKED" if postgres else ""
    return _CLAIM.format(index=index, only="AND o.id = :only" if only else "", skip=skip)


def patients_of(parts: Iterable[dict[str, Any]]) -> list[str]:
    """The patients a Bundle's resources are about: each ``subject``/``patient`` as its literal
    reference (``Patient/123``) or its identifier (``system|value``)."""
    found: set[str] = set()
    for part in parts:
        for entry in part.get("entry", []) or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            for key in ("subject", "patient"):
                target = resource.get(key)
                if not isinstance(target, dict):
                    continue
                ident = target.get("identifier")
                if isinstance(target.get("reference"), str):
                    found.add(target["reference"])
                elif isinstance(ident, dict):
                    found.add(f"{ident.get('system', '')}|{ident.get('value', '')}")
    return sorted(found)


@dataclass(frozen=True)
class Item:
    """One outbox item as stored."""

    id: str
    kind: str
    state: str
    parts: list[dict[str, Any]]
    part_count: int
    resource_count: int
    next_part: int
    responses: list[dict[str, Any]]
    attempts: int
    next_attempt_at: float
    last_error: dict[str, Any] | None
    created_at: float
    updated_at: float
    patients: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    resolved: dict[str, str] = field(default_factory=dict)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)


def _summary(columns: tuple[Any, ...]) -> dict[str, Any]:
    """What the API shows of an item, from the columns of ``_SUMMARY_COLUMNS``."""
    (id_, kind, state, attempts, part_count, next_part, resource_count, next_attempt_at, last_error,
     created_at, updated_at, purged_at) = columns
    found: dict[str, Any] = {
        "id": id_,
        "kind": kind,
        "state": state,
        "attempts": attempts,
        "parts": part_count,
        "parts_sent": next_part,
        "resources": resource_count,
        "created_at": iso_utc(created_at),
        "updated_at": iso_utc(updated_at),
    }
    if state == "pending" and attempts:
        found["next_attempt_at"] = iso_utc(next_attempt_at)
    error = _loads(last_error, None)
    if error:
        found["last_error"] = error
        if error.get("retry_after_capped") and state == "pending":
            found["retry_after_capped"] = True
    if purged_at is not None:
        found["purged_at"] = iso_utc(purged_at)
    return found


def _loads(text: str | None, default: Any) -> Any:
    """A JSON column; ``default`` when it is empty or, in a damaged row, not JSON (a summary must
    still list it, so it can be inspected and put right)."""
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def stripped_response(response: dict[str, Any]) -> dict[str, Any]:
    """A transaction-response without resources or outcomes: each entry's status and location."""
    kept = ("status", "location", "etag", "lastModified")
    entries = [
        {"response": {k: v for k, v in (e.get("response") or {}).items() if k in kept}}
        for e in response.get("entry", []) or [] if isinstance(e, dict)
    ]
    return {"resourceType": "Bundle", "type": response.get("type", "transaction-response"), "entry": entries}


def _without_outcome(error: Any) -> Any:
    """An error record without the EHR's OperationOutcomes (their text may quote what was sent),
    its own and each entry's; statuses and locations stay."""
    if not isinstance(error, dict):
        return error
    kept = {k: v for k, v in error.items() if k != "outcome"}
    if isinstance(kept.get("entries"), list):
        kept["entries"] = [{k: v for k, v in e.items() if k != "outcome"} if isinstance(e, dict) else e
                           for e in kept["entries"]]
    return kept


def _hold(db: Connection, item_id: str) -> None:
    """Record the patients of an unfinished item (its place in the queue with each)."""
    seq, patients = db.execute("SELECT seq, patients FROM outbox WHERE id = ?", (item_id,)).fetchone()
    db.executemany("INSERT INTO outbox_patients (patient, seq, item_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                   [(patient, seq, item_id) for patient in _loads(patients, [])])


class Outbox:
    """The outbox table; safe to share between threads and between processes."""

    def __init__(self, database: str, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._store = open_store(database, _SCHEMA)
        self._next_turn, self._next_seq = _NEXT[self._store.postgres]
        self._lock = self._store.lock
        if not self._store.postgres:  # PostgreSQL's schema is its migrations
            self._upgrade()

    def _upgrade(self) -> None:
        """Bring a SQLite database of an earlier release up to date: add the columns it lacks, give its
        items their place in the queue, and record the patients of its unfinished items (once;
        under the write lock, so two processes starting together do it once)."""
        with self._store.transaction() as db:
            have = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
            missing = [name for name in _ADDED_COLUMNS if name not in have]
            for name in missing:
                db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {_ADDED_COLUMNS[name]}")
            if "seq" in missing:
                rows = db.execute("SELECT id FROM outbox ORDER BY created_at, rowid").fetchall()
                db.executemany("UPDATE outbox SET seq = ?, turn = ? WHERE id = ?",
                               [(n, n, item_id) for n, (item_id,) in enumerate(rows, 1)])
            if "patients" in missing:
                rows = db.execute("SELECT id, parts FROM outbox WHERE state IN ('pending', 'sending')").fetchall()
                db.executemany("UPDATE outbox SET patients = ? WHERE id = ?",
                               [(_dumps(patients_of(_loads(parts, []))), item_id) for item_id, parts in rows])
            layout = {row[1] for row in db.execute("PRAGMA table_info(outbox_patients)")}
            if "seq" not in layout:  # absent, or of a layout without the queue place: built afresh
                db.execute("DROP TABLE IF EXISTS outbox_patients")
                for statement in _PATIENTS.split(";"):
                    if statement.strip():
                        db.execute(statement)
                for (item_id,) in db.execute("SELECT id FROM outbox WHERE state IN ('pending', 'sending')").fetchall():
                    _hold(db, item_id)
            for statement in _ADDED_INDEXES:
                db.execute(statement)

    def _row(self, row: tuple[Any, ...] | None) -> Item | None:
        if row is None:
            return None
        (id_, kind, state, parts, part_count, resource_count, next_part, responses, attempts,
         next_attempt_at, last_error, created_at, updated_at, patients, history, resolved, progress) = row
        return Item(
            id_, kind, state, json.loads(parts), part_count, resource_count, next_part, json.loads(responses),
            attempts, next_attempt_at, _loads(last_error, None), created_at, updated_at,
            _loads(patients, []), _loads(history, []), _loads(resolved, {}), _loads(progress, {}),
        )

    def add(self, kind: str, parts: list[dict[str, Any]]) -> str:
        """Store a new item (committed when this returns); its id."""
        item_id = str(uuid.uuid4())
        now = self.clock()
        count = sum(len(p.get("entry", [])) for p in parts)
        patients = patients_of(parts)
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO outbox (id, kind, state, parts, part_count, resource_count, next_attempt_at, created_at,"
                f" updated_at, patients, turn, seq) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, {self._next_turn}, {self._next_seq})",
                (item_id, kind, _dumps(parts), len(parts), count, now, now, now, _dumps(patients)),
            )
            _hold(db, item_id)
        return item_id

    def subject_of(self, system: str, value: str) -> dict[str, Any] | None:
        """The ``subject`` of the resource identified ``system|value`` in the newest item that still
        holds its Bundle (what a withdrawal is about, when the caller does not name the patient)."""
        needle = json.dumps(value, ensure_ascii=False)[1:-1]
        for (parts,) in self._store.all("SELECT parts FROM outbox WHERE parts LIKE ? ORDER BY created_at DESC, seq DESC",
                                        (f"%{needle}%",)):
            for part in _loads(parts, []):
                for entry in part.get("entry") or []:
                    resource = entry.get("resource") if isinstance(entry, dict) else None
                    if isinstance(resource, dict) and isinstance(resource.get("subject"), dict) and any(
                            isinstance(i, dict) and (i.get("system"), i.get("value")) == (system, value)
                            for i in identifiers(resource)):
                        return dict(resource["subject"])
        return None

    def get(self, item_id: str) -> Item | None:
        return self._row(self._store.one(
            "SELECT id, kind, state, parts, part_count, resource_count, next_part, responses, attempts,"
            " next_attempt_at, last_error, created_at, updated_at, patients, history, resolved, progress FROM outbox"
            " WHERE id = ?",
            (item_id,),
        ))

    def summary(self, item_id: str) -> dict[str, Any] | None:
        """What ``GET /outbox/{id}`` shows: state and progress, the patients given by identifier and
        the ``Patient/<id>`` each was resolved to, the EHR's answers (statuses and locations), the
        last error and earlier lives; the Bundles sent are not read."""
        row = self._store.one(f"SELECT {_SUMMARY_COLUMNS}, progress, resolved, responses, history FROM outbox"
                              " WHERE id = ?", (item_id,))
        if row is None:
            return None
        found = _summary(row[:-4])
        progress, resolved, responses, history = (_loads(row[-4], {}), _loads(row[-3], {}), _loads(row[-2], []),
                                                  _loads(row[-1], []))
        if progress:
            # Resources of the part being sent already in the EHR (one request per resource, or a batch layer).
            found["part_progress"] = progress
        if resolved:
            found["patients_resolved"] = resolved
        if responses:
            found["responses"] = responses
        if history:
            found["history"] = history
        return found

    def summaries(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Summaries of the oldest items (of one state), read from their columns only."""
        where = " WHERE state = ?" if state else ""
        args: tuple[Any, ...] = (state, limit) if state else (limit,)
        rows = self._store.all(f"SELECT {_SUMMARY_COLUMNS} FROM outbox{where} ORDER BY created_at, id LIMIT ?", args)
        return [_summary(row) for row in rows]

    def ids(self, state: str) -> list[str]:
        return [row[0] for row in self._store.all("SELECT id FROM outbox WHERE state = ? ORDER BY created_at, id",
                                                   (state,))]

    def counts(self) -> dict[str, int]:
        rows = self._store.all("SELECT state, count(*) FROM outbox GROUP BY state")
        return {state: 0 for state in STATES} | {state: n for state, n in rows}

    def readiness(self) -> dict[str, Any]:
        """The counts per state and how long the oldest undelivered item has waited (seconds)."""
        oldest = self._store.one("SELECT min(created_at) FROM outbox WHERE state IN ('pending', 'sending')")
        waited = None if oldest is None or oldest[0] is None else round(max(0.0, self.clock() - oldest[0]), 1)
        return {**self.counts(), "oldest_pending_age_s": waited}

    def claim(self, lease: float, only: str | None = None) -> Item | None:
        """Take the due item (or one whose lease ran out) first in the round robin that no earlier
        unfinished item of its patients holds back, for ``lease`` seconds; the claim starts a new attempt unless
        it continues one after a part was sent."""
        now = self.clock()
        # One item asked for by id is found by its key; otherwise the queue is walked in order.
        query = claim_query(self._store.postgres, bool(only))
        params: dict[str, Any] = {"now": now, "only": only} if only else {"now": now}
        with self._store.transaction() as db:
            if self._store.postgres and not only:
                for setting in QUEUE_WALK:
                    db.execute(setting)
            row = db.execute(query, params).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE outbox SET state = 'sending', lease_until = ?, attempts = attempts + 1 - resume, resume = 0,"
                " updated_at = ? WHERE id = ?",
                (now + lease, now, row[0]),
            )
        return self.get(row[0])

    def part_sent(self, item_id: str, response: dict[str, Any]) -> str:
        """Record one part as sent; the item's new state: ``sent`` after its last part, otherwise
        ``pending`` and due now, at the back of the round robin (its attempt goes on at its next claim)."""
        now = self.clock()
        with self._store.transaction() as db:
            row = db.execute(f"SELECT responses, next_part, part_count, parts, progress FROM outbox WHERE id = ?{self._lock}",
                             (item_id,)).fetchone()
            responses = _loads(row[0], [])
            responses.append(response)
            state = "sent" if row[1] + 1 >= row[2] else "pending"
            # The answers to this part's entries are in its response now; those of later parts stay.
            sent = {e.get("fullUrl") for e in (_loads(row[3], [])[row[1]].get("entry") or [])}
            progress = {url: answer for url, answer in _loads(row[4], {}).items() if url not in sent and state != "sent"}
            db.execute(
                "UPDATE outbox SET state = ?, next_part = next_part + 1, responses = ?, next_attempt_at = ?,"
                f" lease_until = NULL, resume = ?, progress = ?, turn = {self._next_turn}, updated_at = ? WHERE id = ?",
                (state, _dumps(responses), now, int(state == "pending"), _dumps(progress), now, item_id),
            )
            if state == "sent":
                db.execute("DELETE FROM outbox_patients WHERE item_id = ?", (item_id,))
        return state

    def record_resolved(self, item_id: str, resolved: dict[str, str]) -> None:
        """Record the literal ``Patient/<id>`` each patient identifier of the item was resolved to,
        so its later parts (and attempts) name the same Patient; those references join the item's
        patients, so later items naming the patient by reference wait for it too."""
        with self._store.transaction() as db:
            row = db.execute(f"SELECT patients, state FROM outbox WHERE id = ?{self._lock}", (item_id,)).fetchone()
            if row is None:
                return
            patients = sorted({*_loads(row[0], []), *resolved.values()})
            db.execute("UPDATE outbox SET resolved = ?, patients = ? WHERE id = ?",
                       (_dumps(resolved), _dumps(patients), item_id))
            if row[1] in UNFINISHED:
                _hold(db, item_id)

    def record_progress(self, item_id: str, answers: dict[str, dict[str, Any]]) -> None:
        """Record the EHR's answers (status, location) to entries of the part being sent, by their
        fullUrl, as they are written: a retry, or a worker taking the item over after a crash, goes on
        from the next entry and never writes this one again."""
        with self._store.transaction() as db:
            row = db.execute(f"SELECT progress FROM outbox WHERE id = ?{self._lock}", (item_id,)).fetchone()
            if row is not None:
                progress = {**_loads(row[0], {}), **answers}
                db.execute("UPDATE outbox SET progress = ? WHERE id = ?", (_dumps(progress), item_id))

    def extend_lease(self, item_id: str, lease: float) -> None:
        """The item being sent is still being worked on: its lease runs ``lease`` seconds from now."""
        self._store.write("UPDATE outbox SET lease_until = ? WHERE id = ? AND state = 'sending'",
                          (self.clock() + lease, item_id))

    def split_part(self, item_id: str, parts: list[dict[str, Any]]) -> None:
        """Replace the part being sent by ``parts`` (the same entries in smaller Bundles, the EHR
        having refused it for its size); the item is due again now, its attempt going on."""
        now = self.clock()
        with self._store.transaction() as db:
            row = db.execute(f"SELECT parts, next_part FROM outbox WHERE id = ?{self._lock}", (item_id,)).fetchone()
            stored = _loads(row[0], [])
            stored[row[1]:row[1] + 1] = parts
            db.execute(
                "UPDATE outbox SET parts = ?, part_count = ?, state = 'pending', next_attempt_at = ?, lease_until = NULL,"
                " resume = 1, updated_at = ? WHERE id = ?",
                (_dumps(stored), len(stored), now, now, item_id))

    def retry(self, item_id: str, delay: float, error: dict[str, Any], *, progressed: bool = False) -> None:
        """Back to pending, due after ``delay`` seconds (at the back of the round robin).
        ``progressed``: the failed attempt wrote some of its resources first, so the next one goes
        on from there and is not counted as another attempt."""
        self._set(item_id, "pending", self.clock() + delay, error, resume=progressed)

    def bury(self, item_id: str, error: dict[str, Any], state: str = "dead") -> None:
        """Dead: the EHR refused it; or ``conflict``: the EHR keeps content the item changes and will
        not update it. Its patients' later items are no longer held back by it."""
        self._set(item_id, state, None, error)

    def _set(self, item_id: str, state: str, next_attempt_at: float | None, error: dict[str, Any] | None,
             *, resume: bool = False) -> None:
        now = self.clock()
        with self._store.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = ?, next_attempt_at = COALESCE(?, next_attempt_at), lease_until = NULL,"
                f" resume = ?, last_error = COALESCE(?, last_error), turn = {self._next_turn}, updated_at = ? WHERE id = ?",
                (state, next_attempt_at, int(resume), _dumps(error) if error else None, now, item_id),
            )
            if state not in UNFINISHED:
                db.execute("DELETE FROM outbox_patients WHERE item_id = ?", (item_id,))

    def revive(self, item_id: str) -> None:
        """Put a dead (or conflict) item back (pending, due now, its attempts counted afresh); its last error
        goes into its history. Patients resolved for it are forgotten (kept in its history) unless a
        part has been sent naming them, so it is matched afresh. NotFound for an unknown id,
        Conflict for an item that is neither dead nor in conflict."""
        now = self.clock()
        with self._store.transaction() as db:
            row = db.execute("SELECT state, attempts, last_error, history, updated_at, resolved, next_part FROM outbox"
                             f" WHERE id = ?{self._lock}", (item_id,)).fetchone()
            if row is None:
                raise NotFound(f"No outbox item {item_id!r}.")
            state, attempts, last_error, history, died_at, resolved, next_part = row
            if state not in ("dead", "conflict"):
                raise Conflict(f"Outbox item {item_id!r} is {state}: only a dead or conflict item can be put back.")
            life = {"state": state, "since": iso_utc(died_at), "attempts": attempts,
                    "last_error": _loads(last_error, None), "retried_at": iso_utc(now)}
            if _loads(resolved, {}):
                life["patients_resolved"] = _loads(resolved, {})
            db.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL,"
                f" lease_until = NULL, resume = 0, history = ?, resolved = ?, turn = {self._next_turn}, updated_at = ?"
                " WHERE id = ?",
                (now, _dumps([*_loads(history, []), life]), resolved if next_part else "{}", now, item_id),
            )
            _hold(db, item_id)

    def purge(self, older_than: float) -> list[str]:
        """Drop the Bundles of items sent more than ``older_than`` seconds ago (their parts, the
        EHR's response bodies and outcomes), keeping identifiers and delivery metadata: state,
        counts, times, each response's status and location. The ids of the items purged."""
        now = self.clock()
        with self._store.transaction() as db:
            rows = db.execute(
                "SELECT id, responses, last_error, history FROM outbox"
                f" WHERE state = 'sent' AND purged_at IS NULL AND updated_at < ?{self._lock}",
                (now - older_than,),
            ).fetchall()
            for item_id, responses, last_error, history in rows:
                kept = [stripped_response(r) for r in _loads(responses, []) if isinstance(r, dict)]
                lives = [{**life, "last_error": _without_outcome(life.get("last_error"))}
                         for life in _loads(history, []) if isinstance(life, dict)]
                error = _without_outcome(_loads(last_error, None))
                db.execute(
                    "UPDATE outbox SET parts = '[]', responses = ?, last_error = ?, history = ?, purged_at = ?"
                    " WHERE id = ?",
                    (_dumps(kept), _dumps(error) if error else None, _dumps(lives), now, item_id),
                )
        if rows:
            # secure_delete overwrites the freed content in the database; the WAL still holds the
            # pages as they were until it is checkpointed and emptied.
            self._store.checkpoint()
        return [row[0] for row in rows]
