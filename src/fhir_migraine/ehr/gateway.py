"""The EHR gateway: the one place that composes the FHIR client, the outbox, the retry policy, the
pull cursors and the outbox worker from the settings. The CLI and the service both push and pull
through it, so they behave the same.

    gateway = EhrGateway.from_settings(settings)
    item_id = gateway.queue(bundle, kind="order")            # stored; the worker sends it later
    item = gateway.push_now(bundle, wait=60)                 # stored, then sent now (retried up to 60 s)
    bundle = gateway.pull("Patient/123", since="2026-11-01T00:00:00Z")
    found = gateway.pull_unmapped("Patient/123", cursor=True)
    for patient in gateway.unmapped(gateway.group_pull("Group/7")): ...  # Bulk Data where offered
    gateway.start_worker(); ...; gateway.stop_worker()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fhir_migraine import operations
from fhir_migraine.config import Settings
from fhir_migraine.ehr.bulk import BulkPuller, GroupPull, bulk_bundles, discard, group_members, group_reference
from fhir_migraine.ehr.capabilities import CapabilityCache
from fhir_migraine.ehr.interface import Ehr
from fhir_migraine.ehr.known import KnownResources
from fhir_migraine.ehr.outbox import Item, Outbox
from fhir_migraine.ehr.paging import Pager, PagingPolicy
from fhir_migraine.ehr.patients import find_patient, parse_identifier
from fhir_migraine.ehr.probe import EhrProbe
from fhir_migraine.ehr.pull import Cursors, cursor_after, patient_reference, pull, since_instant
from fhir_migraine.ehr.token_endpoint import is_loopback
from fhir_migraine.ehr.withdrawals import KIND as WITHDRAWAL
from fhir_migraine.ehr.withdrawals import diary_retraction, order_cancellation
from fhir_migraine.ehr.worker import RetryPolicy, Worker, wait_for
from fhir_migraine.ehr.writer import Writer
from fhir_migraine.errors import ConfigError, EhrError, EhrRejected, EhrUnsupported, InputError, NotFound, Problem
from fhir_migraine.identifiers import DIARY_SYSTEM, ORDER_SYSTEM
from fhir_migraine.inputs.diary_files import Located
from fhir_migraine.inputs.orders import FindProtocol
from fhir_migraine.mapping.fhir import split_transaction, transaction
from fhir_migraine.mapping.report_document import report_value

log = logging.getLogger(__name__)
Resource = dict[str, Any]
#: The outbox kind of a monthly report's DocumentReference.
REPORT_KIND = "report"


@dataclass(frozen=True)
class FiledReport:
    """A month's report and what became of it: queued (``outbox_id``), or already in the EHR with the
    same content (``document``: its reference there); ``replaces`` the earlier report of the month."""

    report: operations.MonthlyReport
    outbox_id: str | None
    document: str | None
    replaces: str | None


def client_from_settings(settings: Settings, *, timeout: float | None = None) -> Ehr:
    """The FHIR client of the configured EHR (URL, timeout, TLS, credentials); ``timeout``
    replaces ``ehr.timeout`` (the readiness probe's is shorter)."""
    from fhir_migraine.ehr.auth import auth_from_settings
    from fhir_migraine.ehr.client import FhirClient

    ehr = settings.ehr
    if not ehr.url:
        raise ConfigError("no EHR is configured: set FHIR_MIGRAINE_EHR_URL")
    check_ehr_url(ehr.url, allow_http=ehr.allow_http)
    trusted = [ehr.gateway_origin] if ehr.gateway_origin else []
    for gateway_origin in trusted:
        check_ehr_url(gateway_origin, allow_http=ehr.allow_http, what="FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN")
    auth = auth_from_settings(ehr.auth, fhir_base=ehr.url, verify=ehr.verify, timeout=timeout or ehr.timeout)
    return FhirClient(ehr.url, auth=auth, timeout=timeout or ehr.timeout, verify=ehr.verify,
                      trusted_origins=trusted, max_count=ehr.max_count)


def check_ehr_url(url: str, *, allow_http: bool = False, what: str = "the EHR URL") -> None:
    """ConfigError unless ``url`` is an https URL, or an http one to this machine (or allowed):
    patient data and the EHR credentials must not cross a network in clear text."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} must be an http(s) URL with a host, got {parts.scheme or 'no'} scheme")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{what} uses plain http to a host that is not this machine: use https, or set "
            "FHIR_MIGRAINE_EHR_ALLOW_HTTP=true for a test EHR on a trusted network"
        )


def transaction_response(item: Item) -> Resource:
    """The EHR's transaction-response of a sent item; the parts' entries in one Bundle when it was split."""
    if len(item.responses) == 1:
        return item.responses[0]
    entries = [e for r in item.responses for e in r.get("entry", [])]
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


class EhrGateway:
    """Push (through the durable outbox) and pull, against one EHR."""

    def __init__(self, settings: Settings, ehr: Ehr, *, probe_ehr: Ehr | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.ehr = ehr
        self.sleep = sleep  # how a pull waits before asking a page again
        # What the EHR can do: read once, kept capabilities_ttl seconds, refreshed by each readiness probe.
        self.capabilities = CapabilityCache(ehr.metadata, ttl=settings.ehr.capabilities_ttl)
        self.probe = EhrProbe(probe_ehr or ehr, interval=settings.ehr.probe_interval, capabilities=self.capabilities)
        self.outbox = Outbox(settings.database)
        o = settings.outbox
        self.policy = RetryPolicy(base=o.retry_base, cap=o.retry_cap, lease=o.lease, max_attempts=o.max_attempts,
                                  retry_after_cap=o.retry_after_cap)
        self._known = KnownResources(settings.database, ehr.base_url)
        self._writer: Writer | None = None
        self._cursors: Cursors | None = None
        self._worker: Worker | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> EhrGateway:
        probe = client_from_settings(settings, timeout=settings.ehr.probe_timeout)
        return cls(settings, client_from_settings(settings), probe_ehr=probe)

    @property
    def writer(self) -> Writer:
        """Writes each part the way the EHR allows (transaction, batch or one resource at a time)."""
        if self._writer is None or self._writer.ehr is not self.ehr:
            self._writer = Writer(self.ehr, self.capabilities.get, self._known, self.settings.ehr.write_strategy)
        return self._writer

    # --- push -------------------------------------------------------------------------------------

    def queue(self, bundle: Resource, *, kind: str = "bundle", checked: bool = False) -> str:
        """Store a transaction Bundle in the outbox (committed when this returns), split into
        transactions of at most ``ehr.transaction_size`` entries; its outbox id. A Bundle that the
        mapping operations made is ``checked`` already; any other is validated first (InputError)."""
        if not checked:
            _check_transaction(bundle)
        self.check_writable(bundle, ask=False)
        return self.outbox.add(kind, split_transaction(bundle, self.settings.ehr.transaction_size))

    def push_now(self, bundle: Resource, *, wait: float, kind: str = "bundle",
                 sleep: Callable[[float], None] = time.sleep) -> Item:
        """Queue the Bundle and send it now, retrying as the policy says for up to ``wait`` seconds;
        the item as it then is: ``sent``, ``dead`` (the EHR refused it), ``conflict`` (it holds other
        content and will not update it) or still ``pending``."""
        _check_transaction(bundle)
        self.check_writable(bundle, ask=True)
        item_id = self.queue(bundle, kind=kind, checked=True)
        return wait_for(self.outbox, item_id, self.ehr, self.policy, deadline=time.time() + wait, sleep=sleep,
                        writer=self.writer)

    def cancel_order(self, order_id: str, *, patient: str | None = None, reason: str | None = None) -> str:
        """Queue the cancellation of an order (``ehr.withdrawals``: its MedicationRequests
        ``cancelled``, or ``stopped`` once given, and its RequestGroup ``revoked``); its outbox id.
        ``patient``: whom the order is for, needed when this service did not queue the order itself."""
        subject = self._subject(ORDER_SYSTEM, order_id, patient, "order")
        try:
            part = order_cancellation(order_id, subject, reason)
        except ValueError as error:
            raise InputError.of([Problem("$.order_id", str(error))], "request") from None
        return self.outbox.add(WITHDRAWAL, [part])

    def retract_diary(self, entry_id: str, *, patient: str | None = None) -> str:
        """Queue the retraction of a diary entry (its Observations ``entered-in-error``); its outbox id."""
        subject = self._subject(DIARY_SYSTEM, entry_id, patient, "diary entry")
        try:
            part = diary_retraction(entry_id, subject)
        except ValueError as error:
            raise InputError.of([Problem("$.entry_id", str(error))], "request") from None
        return self.outbox.add(WITHDRAWAL, [part])

    def send_now(self, item_id: str, *, wait: float, sleep: Callable[[float], None] = time.sleep) -> Item:
        """Send a queued item (a withdrawal, a report) now, as ``push_now`` sends a push."""
        return wait_for(self.outbox, item_id, self.ehr, self.policy, deadline=time.time() + wait, sleep=sleep,
                        writer=self.writer)

    def _subject(self, system: str, value: str, patient: str | None, what: str) -> Resource:
        if patient is not None:
            pair = parse_identifier(patient)
            if pair is None:
                return {"reference": patient_reference(patient)}
            return {"identifier": {"system": pair[0], "value": pair[1]}}
        found = self.outbox.subject_of(system, value)
        if found is None:
            raise NotFound(f"no {what} {value!r} went through this service's outbox: name its patient"
                           " (patient=Patient/<id> or identifier=SYSTEM|VALUE)")
        return found

    def check_writable(self, bundle: Resource, *, ask: bool) -> None:
        """EhrUnsupported, before anything is stored, when the EHR's CapabilityStatement does not
        advertise a write the Bundle needs (an item could only end dead). ``ask``: read the statement
        now if it is not cached; otherwise only a statement already read counts (the service does not
        wait for the EHR to accept an order)."""
        try:
            caps = self.capabilities.get() if ask else self.capabilities.last()
        except EhrError:
            caps = None  # the EHR cannot be asked now: the item is queued, and its sending will tell
        if caps is None or not caps.known:
            return
        types = {str(e["resource"].get("resourceType")) for e in bundle.get("entry") or []
                 if isinstance(e, dict) and isinstance(e.get("resource"), dict)}
        missing = caps.missing_writes(types)
        if missing:
            raise EhrUnsupported(f"the EHR does not advertise {', '.join(missing)} in its CapabilityStatement, so"
                                 " these resources cannot be written there; nothing was stored (see"
                                 " docs/ehr-compatibility.md for what such an EHR takes)")

    # --- pull -------------------------------------------------------------------------------------

    @property
    def cursors(self) -> Cursors:
        if self._cursors is None:
            self._cursors = Cursors(self.settings.database)
        return self._cursors

    def pager(self) -> Pager:
        """The pages of one pull's searches: next links resolved and checked, ``_count`` bounded, a
        page the EHR is busy for asked again within the pull settings' bounds (``ehr.paging``)."""
        p = self.settings.pull
        policy = PagingPolicy(max_retries=p.max_retries, max_wait=p.max_wait, max_count=self.settings.ehr.max_count)
        return Pager(self.ehr, policy, sleep=self.sleep)

    def patient(self, patient: str) -> str:
        """The literal reference of a patient given as ``Patient/123``, ``123`` or
        ``identifier=SYSTEM|VALUE`` (found in the EHR: ``ehr.patients``; PatientUnknown when none
        has it, PatientAmbiguous when several do)."""
        pair = parse_identifier(patient)
        return patient_reference(patient) if pair is None else find_patient(self.ehr, *pair)

    def pull(self, patient: str, *, since: str | None = None, cursor: bool = False) -> Resource:
        """A searchset Bundle of the patient's resources of this project: all of them, those changed
        since ``since``, or (``cursor``) those changed since this patient's previous cursor pull,
        which then moves the cursor to this pull's start by the EHR's clock, less the overlap. A
        patient given by identifier is found first (``patient``) and pulled by its literal reference."""
        if parse_identifier(patient) is None:
            patient_reference(patient)  # a bad reference is refused before the EHR is asked anything
        if since is not None and cursor:
            raise InputError.of([Problem("$.since", "give since or cursor, not both")], "request")
        since_instant(since)
        reference = self.patient(patient)
        count = self.settings.ehr.max_count
        # The search parameters come from the EHR's CapabilityStatement (``pull.plan``).
        caps = self.capabilities.get()
        if not cursor:
            return pull(self.pager(), reference, since=since, count=count, capabilities=caps)
        bundle = pull(self.pager(), reference, since=self.cursors.get(reference), count=count, capabilities=caps)
        # Taken from the EHR's clock at the first page, so nothing written during the pull is skipped next time.
        following = cursor_after(bundle, self.settings.pull.cursor_overlap)
        if following is not None:
            self.cursors.set(reference, following)
        return bundle

    def pull_unmapped(self, patient: str, *, since: str | None = None, cursor: bool = False,
                      find_protocol: FindProtocol | None = None) -> dict[str, Any]:
        """The pull read back into orders and diary entries, each resource validated first (see
        ``operations.unmap_pulled``); ``resources`` counts what the EHR returned."""
        bundle = self.pull(patient, since=since, cursor=cursor)
        return {**operations.unmap_pulled(bundle, find_protocol), "resources": bundle["total"]}

    def group_pull(self, group: str, *, since: str | None = None, folder: str | None = None,
                   alive: Callable[[], bool] = lambda: True, sleep: Callable[[float], object] | None = None) -> GroupPull:
        """A group's pull: its members read from the EHR's Group, then FHIR Bulk Data's group export
        where the EHR lists it (and ``FHIR_MIGRAINE_PULL_BULK`` is ``auto``), else (or when the EHR
        refuses the kick-off as unsupported) one pull per member. Each member's Bundle is the one a
        single pull of it gives. ``folder``: where the export's files are written (a private folder
        of the system's temporary one when None); ``alive``: asked between waits and files, False
        gives up; ``sleep``: how the export is waited for (the gateway's when None). The caller
        closes what it is given (``GroupPull.close``)."""
        reference = group_reference(group)
        since_instant(since)
        patients = group_members(self.ehr, reference)
        settings, caps = self.settings.pull, self.capabilities.get()
        if settings.bulk == "auto" and caps.exports_group():
            puller = BulkPuller(self.ehr, timeout=settings.bulk_timeout, max_file_bytes=settings.bulk_max_file_bytes,
                                folder=folder, sleep=sleep or self.sleep, alive=alive)
            try:
                exported = puller.export(reference, since=since)
            except EhrRejected as error:
                # An EHR whose statement could not be read may not know the operation at all (404).
                if not isinstance(error, EhrUnsupported) and (caps.known or error.status not in (400, 404)):
                    raise
                log.warning("the EHR refused the group export; pulling one patient at a time",
                            extra={"error_type": type(error).__name__})
            else:
                bundles = bulk_bundles(exported, patients, since=since, base=self.ehr.base_url)
                return GroupPull(reference, "bulk", patients, bundles, close=lambda: discard(exported))
        return GroupPull(reference, "per-patient", patients, ((p, self.pull(p, since=since)) for p in patients))

    @staticmethod
    def unmapped(found: GroupPull, find_protocol: FindProtocol | None = None) -> Iterator[dict[str, Any]]:
        """Each member of a group's pull read back as ``pull_unmapped`` reads one patient's, with its
        ``patient`` reference first."""
        for patient, bundle in found.bundles:
            yield {"patient": patient, **operations.unmap_pulled(bundle, find_protocol), "resources": bundle["total"]}

    # --- the monthly report ------------------------------------------------------------------------

    def report_sources(self, patient: str) -> tuple[list[Any], list[Resource], list[dict[str, Any]]]:
        """What a month's report is made of, as the EHR holds it: the patient's diary entries, the
        MedicationRequests of this project that conform to their profile, and the reports filed
        before (``mapping.report_document.reports_in``, newest first)."""
        bundle = self.pull(patient)
        found = operations.unmap_pulled(bundle)
        entries = operations.load_diary(Located(e, f"$.diary[{i}]") for i, e in enumerate(found["diary"]))
        if not entries:
            raise NotFound(f"The EHR holds no diary entries of this project for {patient}: there is nothing to report.")
        invalid = {item["resource"] for item in found["invalid"]}
        requests = [e["resource"] for e in bundle["entry"] if e["resource"].get("resourceType") == "MedicationRequest"
                    and f"MedicationRequest/{e['resource'].get('id')}" not in invalid]
        return entries, requests, found["reports"]

    def file_report(self, patient: str, month: str, *, made_at: datetime | None = None) -> FiledReport:
        """Make the patient's report of ``month`` from what the EHR holds and queue its
        DocumentReference; a report of the same content already in the EHR is not filed again, and
        one of the same month made from other data is replaced (``relatesTo``)."""
        operations.report_month(month, made_at)  # a month that cannot be reported is refused before the EHR is asked
        entries, requests, reports = self.report_sources(patient)
        view = operations.report_view(entries, requests, month, made_at=made_at)
        value = report_value(view)
        earlier = [r for r in reports if r["month"] == view["month"]]
        same = next((r for r in earlier if r["identifier"] == value), None)
        replaces = None if same is not None or not earlier else earlier[0]["reference"]
        report = operations.render_report(view, replaces=replaces)
        if same is not None:
            return FiledReport(report, None, same["reference"], replaces)
        item_id = self.queue(transaction([report.document]), kind=REPORT_KIND, checked=True)
        return FiledReport(report, item_id, None, replaces)

    # --- readiness and the worker -----------------------------------------------------------------

    def ehr_state(self) -> dict[str, Any]:
        """Whether the EHR answered the readiness probe's last look, and its age in seconds;
        never a call to the EHR (see ``ehr.probe``)."""
        return self.probe.state()

    def start_probe(self) -> bool:
        """Start this process's readiness probe (once); whether it runs."""
        return self.probe.start().running

    def stop_probe(self, timeout: float = 5.0) -> bool:
        return self.probe.stop(timeout)

    @property
    def worker_running(self) -> bool:
        return self._worker is not None and self._worker.running

    def start_worker(self) -> bool:
        """Start this process's outbox worker (once; only when the settings enable it); whether one runs."""
        if self.settings.worker.enabled and not self.worker_running:
            self._worker = Worker(self.outbox, self.ehr, self.policy, interval=self.settings.worker.interval,
                                  retention_days=self.settings.outbox.retention_days, writer=self.writer).start()
        return self.worker_running

    def stop_worker(self, timeout: float = 10.0) -> bool:
        """Stop the worker after the transaction in flight (see ``ehr.worker``); whether it stopped in time."""
        if self._worker is None:
            return True
        stopped = self._worker.stop(timeout)
        self._worker = None
        return stopped


def _check_transaction(bundle: Any) -> None:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
        raise InputError.of([Problem("$.type", "push takes a transaction Bundle (as 'map' prints)")], "Bundle")
    operations.check_transaction(bundle)
