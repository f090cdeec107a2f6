"""Sends outbox items to the EHR: one part per claim (so large items interleave with the
others), leases, exponential backoff with jitter, Retry-After (capped), dead letters, and the
periodic purge of old sent Bundles. Logs carry outbox ids, states and counts, never patient data.

Stopping a ``Worker`` never loses an item: a transaction already sent to the EHR is waited for
and recorded; an item is never held between two of its parts (after each part it is pending,
due now, so a stop between parts leaves nothing leased); and an item whose delivery outlives the
stop's timeout stays leased, so another worker takes it up when the lease runs out. Re-sending
is harmless: the writer (``ehr.writer``) records the EHR's answer to each entry as it is written
and never creates a resource the EHR already holds.

A part the EHR refuses for its size is split in two (``mapping.fhir.split_transaction``: never
below one order or one diary day with its members) and sent again; an amendment the EHR will not
take ends the item ``conflict``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_migraine import metrics
from fhir_migraine.config import OutboxSettings
from fhir_migraine.ehr.background import Repeating
from fhir_migraine.ehr.interface import Deliveries
from fhir_migraine.ehr.outbox import Item, Outbox
from fhir_migraine.ehr.patients import resolve
from fhir_migraine.ehr.statuses import outcome_class as delivery_class
from fhir_migraine.ehr.withdrawals import action_of
from fhir_migraine.ehr.writer import Writer
from fhir_migraine.errors import AmendmentRefused, EhrError, EhrTooLarge
from fhir_migraine.mapping.fhir import split_transaction

log = logging.getLogger(__name__)


#: How often a worker drops the Bundles of items sent longer ago than the retention.
PURGE_EVERY_S = 3600.0
DAY_S = 86400.0


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff of the n-th failed attempt: ``base * 2**(n-1)`` capped at ``cap``, with the upper
    half jittered; never sooner than the EHR's ``Retry-After``, itself honoured up to
    ``retry_after_cap`` (an EHR cannot park an item for years). ``max_attempts`` 0: no limit."""

    base: float = 1.0
    cap: float = 300.0
    lease: float = 120.0
    max_attempts: int = OutboxSettings.max_attempts
    retry_after_cap: float = 3600.0

    def delay(self, attempts: int, retry_after: float | None, rand: Callable[[], float] = random.random) -> float:
        exponential = min(self.cap, self.base * (2 ** max(0, attempts - 1)))
        jittered = exponential / 2 + rand() * exponential / 2
        return max(jittered, min(retry_after or 0.0, self.retry_after_cap))

    def caps(self, retry_after: float | None) -> bool:
        """Whether the EHR's ``Retry-After`` is longer than this policy honours."""
        return retry_after is not None and retry_after > self.retry_after_cap


def error_record(error: EhrError) -> dict[str, Any]:
    record: dict[str, Any] = {"type": type(error).__name__, "message": error.message, "retryable": error.retryable}
    if error.status is not None:
        record["status"] = error.status
    if error.outcome is not None:
        record["outcome"] = error.outcome
    if error.entries is not None:
        record["entries"] = error.entries
    return record


def _failed(entries: list[dict[str, Any]] | None) -> int | None:
    """How many entries of a transaction's answer were not 2xx (a count: logs carry no content)."""
    if entries is None:
        return None
    return sum(1 for e in entries if not str(e.get("status") or "").strip().startswith("2"))


def halves(part: dict[str, Any]) -> list[dict[str, Any]]:
    """The part in two smaller transactions, or one (the same entries) when it cannot be split
    without parting entries that refer to each other."""
    size = (len(part.get("entry") or []) + 1) // 2
    return split_transaction(part, max(1, size))


def send(outbox: Outbox, client: Deliveries, item: Item, policy: RetryPolicy, writer: Writer | None = None) -> str:
    """Send the next part of a claimed item with ``writer`` (default: each part as one transaction);
    its new state: ``sent`` after its last part, ``pending`` (due now, behind the other due items)
    after another part, a split or a retryable failure, ``dead`` after a rejection, ``conflict``
    when the EHR keeps content the item changes. Patients given by identifier are resolved first
    (``ehr.patients``): none found is a retryable failure, several a rejection."""
    writer = writer or Writer.transactions(client)
    try:
        part, resolved = resolve(client, item.parts[item.next_part], item.resolved)
        if resolved != item.resolved:
            outbox.record_resolved(item.id, resolved)
        def record(answers: dict[str, dict[str, Any]]) -> None:
            outbox.record_progress(item.id, answers)

        def alive() -> None:
            outbox.extend_lease(item.id, policy.lease)

        if action_of(part) is not None:  # a cancelled order or a retracted diary entry
            response = writer.withdraw(part, done=item.progress, record=record, alive=alive)
        else:
            response = writer.write(part, done=item.progress, record=record, alive=alive)
    except EhrError as error:
        metrics.count_delivery(delivery_class(error))
        return _failed_part(outbox, item, policy, error)
    metrics.count_delivery("2xx")
    state = outbox.part_sent(item.id, response)
    if state == "sent":
        log.info("outbox item sent", extra={"outbox_id": item.id, "attempt": item.attempts,
                                            "parts": item.part_count, "resources": item.resource_count})
    return state


def _failed_part(outbox: Outbox, item: Item, policy: RetryPolicy, error: EhrError) -> str:
    record = error_record(error)
    if isinstance(error, EhrTooLarge):
        smaller = halves(item.parts[item.next_part])
        if len(smaller) > 1:
            outbox.split_part(item.id, smaller)
            log.warning("outbox part too large for the EHR; split", extra={"outbox_id": item.id,
                                                                          "parts": len(smaller)})
            return "pending"
        record["message"] = f"{error.message} (the part holds one order or diary day and cannot be split)"
    if isinstance(error, AmendmentRefused):
        record["changed"] = error.changed
        outbox.bury(item.id, record, state="conflict")
        log.error("outbox item is in conflict with the EHR", extra={"outbox_id": item.id, "status": error.status,
                                                                    "changed": error.changed})
        return "conflict"
    # Entries written before the failure: the attempt got somewhere, so it neither counts towards
    # giving up nor lengthens the backoff (an EHR that refuses every n-th request still gets it all).
    now = outbox.get(item.id)
    progressed = now is not None and len(now.progress) > len(item.progress)
    gave_up = bool(policy.max_attempts) and item.attempts >= policy.max_attempts and not progressed
    if error.retryable and not gave_up:
        delay = policy.delay(1 if progressed else item.attempts, error.retry_after)
        capped = policy.caps(error.retry_after)
        if capped:
            record["retry_after_capped"] = True
        outbox.retry(item.id, delay, record, progressed=progressed)
        log.warning("outbox item will be retried", extra={"outbox_id": item.id, "attempt": item.attempts,
                                                          "delay_s": round(delay, 3), "error": record["type"],
                                                          "status": error.status, "retry_after_capped": capped})
        return "pending"
    if error.retryable:  # retryable, but it has failed as often as the policy allows
        record["max_attempts_reached"] = True
        record["message"] = f"{error.message} (gave up after {item.attempts} attempts)"
    outbox.bury(item.id, record)
    log.error("outbox item is dead", extra={"outbox_id": item.id, "attempt": item.attempts,
                                            "error": record["type"], "status": error.status,
                                            "failed_entries": _failed(error.entries)})
    return "dead"


def drain(outbox: Outbox, client: Deliveries, policy: RetryPolicy, *, only: str | None = None,
          stop: threading.Event | None = None, writer: Writer | None = None) -> int:
    """Send one part at a time of the items due now, oldest turn first (until ``stop`` is set,
    checked between parts); how many parts were handled."""
    handled = 0
    while not (stop is not None and stop.is_set()) and (item := outbox.claim(policy.lease, only)) is not None:
        send(outbox, client, item, policy, writer)
        handled += 1
    return handled


class Worker(Repeating):
    """A background thread that drains the outbox every ``interval`` seconds until stopped, and
    every ``purge_every`` seconds drops the Bundles of items sent more than ``retention_days`` ago
    (None: kept)."""

    name = "outbox worker"
    leftover = "its item stays leased"
    log = log

    def __init__(self, outbox: Outbox, client: Deliveries, policy: RetryPolicy, *, interval: float = 0.5,
                 retention_days: float | None = None, purge_every: float = PURGE_EVERY_S,
                 writer: Writer | None = None) -> None:
        super().__init__(interval=interval)
        self.outbox, self.client, self.policy, self.writer = outbox, client, policy, writer
        self.retention_days, self.purge_every = retention_days, purge_every
        self._next_purge = 0.0  # at start, then every purge_every seconds

    def step(self) -> None:
        self._purge_when_due()
        drain(self.outbox, self.client, self.policy, stop=self._stop, writer=self.writer)

    def _purge_when_due(self) -> None:
        if self.retention_days is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.purge_every
        purged = self.outbox.purge(self.retention_days * DAY_S)
        if purged:
            log.info("outbox purged", extra={"count": len(purged)})


def wait_for(outbox: Outbox, item_id: str, client: Deliveries, policy: RetryPolicy, *, deadline: float,
             sleep: Callable[[float], None] = time.sleep, writer: Writer | None = None) -> Item:
    """Send one item now, retrying as the policy says until it is sent, dead, in conflict or the deadline passes."""
    while True:
        drain(outbox, client, policy, only=item_id, writer=writer)
        item = outbox.get(item_id)
        assert item is not None
        if item.state in ("sent", "dead", "conflict") or time.time() >= deadline:
            return item
        wait = max(0.05, min(item.next_attempt_at - outbox.clock(), deadline - time.time()))
        sleep(wait)
