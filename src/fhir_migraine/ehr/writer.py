"""Writes one part of an outbox item (a transaction Bundle of conditional creates, as the maps make
it) to an EHR the way the EHR allows (``ehr.capabilities``):

- ``transaction``: the part as one transaction, committed together;
- ``batch``: the entries in batches, one per layer of dependencies (``contents.layers``: diary
  members before their day, MedicationRequests before their RequestGroup), each layer's
  references to the entries before it rewritten to the ids the EHR gave them (a batch does not
  resolve ``urn:uuid`` references between its entries);
- ``per-resource``: one request per resource in the same order, each answer recorded (``record``)
  before the next request, so a retry or a worker taking the item over after a crash goes on from
  where it stopped and never writes a resource twice.

"Auto" takes the best the EHR advertises, and steps down (transaction → batch → per-resource) when
the EHR refuses a Bundle kind as unsupported.

Nothing is created twice: a resource is created with ``If-None-Exist`` where the EHR advertises
conditional create for its type; otherwise it is looked for first, by ``identifier`` where the EHR
searches by it, else among the patient's resources of the type (filtered here by identifier), else
by the id this service recorded when it wrote it (``ehr.known``, confirmed by a read).

A resource the EHR already holds is compared with what is sent: unchanged, nothing is written;
changed (an amended order or diary entry), it is updated with ``PUT`` guarded by ``If-Match`` on the
version read; where the EHR advertises no update of the type, or refuses it, the part fails with
``AmendmentRefused`` naming the changed elements (the item ends ``conflict``, never ``sent`` while
the EHR keeps the old content).

The answer is a ``transaction-response`` Bundle with one entry per entry of the part (its status
and location), whatever the strategy, so the outbox keeps one shape.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from fhir_migraine.ehr.capabilities import Capabilities
from fhir_migraine.ehr.client import written as read_answer
from fhir_migraine.ehr.contents import (
    business_identifier,
    changed_elements,
    differs_from,
    digest,
    element_digests,
    in_cycles,
    layers,
    rewrite,
    without_references,
)
from fhir_migraine.ehr.interface import Deliveries, Written
from fhir_migraine.ehr.known import Known, KnownResources
from fhir_migraine.ehr.retrying import Retrying
from fhir_migraine.ehr.statuses import status_code
from fhir_migraine.ehr.withdrawals import FINAL, STATEMENT, WITHDRAWS, action_of, members, statement_of, withdrawn
from fhir_migraine.errors import (
    AmendmentRefused,
    EhrConflict,
    EhrError,
    EhrRejected,
    EhrUnsupported,
    NothingToWithdraw,
)
from fhir_migraine.identifiers import DIARY_SYSTEM, diary_value
from fhir_migraine.mapping.fhir import escaped, identifiers, if_none_exist, references, token

log = logging.getLogger(__name__)
Resource = dict[str, Any]
#: What to record after each entry written: its fullUrl and the EHR's answer (status, location).
Record = Callable[[dict[str, dict[str, Any]]], None]
#: The strategies after each, when the EHR refuses it as unsupported.
STEP_DOWN = {"transaction": "batch", "batch": "per-resource"}


@dataclass
class Entry:
    """One entry of the part: the resource as mapped, its identifier and digests, and what the EHR answered."""

    full_url: str
    resource: Resource
    identifier: str | None
    digest: str
    elements: dict[str, str]
    answer: dict[str, Any] | None = None  # {"status": ..., "location": ...} once written or found
    created: bool = False  # created by this write (and completed by an update after)

    @property
    def type(self) -> str:
        return str(self.resource["resourceType"])

    @property
    def reference(self) -> str | None:
        """``Type/id`` in the EHR, once known."""
        location = (self.answer or {}).get("location")
        if not isinstance(location, str):
            return None
        parts = location.split("/")
        return "/".join(parts[:2]) if len(parts) >= 2 else None


def _status(written: Written) -> str:
    return "201 Created" if written.created else "200 OK"


def _location(resource_type: str, written: Written) -> str:
    location = f"{resource_type}/{written.id}"
    return f"{location}/_history/{written.version}" if written.version else location


def _patient(resource: Resource) -> str | None:
    for key in ("subject", "patient"):
        target = resource.get(key)
        reference = target.get("reference") if isinstance(target, dict) else None
        if isinstance(reference, str) and reference.startswith("Patient/"):
            return reference
    return None


def _carries(resource: Resource, identifier: str) -> bool:
    return any(isinstance(i, dict) and f"{i.get('system')}|{i.get('value')}" == identifier for i in identifiers(resource))


@dataclass
class Writer:
    """Writes parts to one EHR. ``capabilities``: the EHR's, as the gateway's cache gives them;
    ``known``: what this service wrote there (None: nothing is recorded, as in tests of the worker alone)."""

    ehr: Deliveries
    capabilities: Callable[[], Capabilities]
    known: KnownResources | None = None
    strategy: str = "auto"
    #: How long one request answered 429 or 503 is waited for and asked again (``Retrying``).
    sleep: Callable[[float], None] = time.sleep
    #: The Bundle kinds the EHR refused as unsupported, by the digest of the statement that advertised them.
    _refused: dict[str, set[str]] = field(default_factory=dict)

    #: Called before each request to the EHR (the worker extends its lease on the item: a part
    #: written one request at a time may take longer than one lease).
    alive: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.calls = Retrying(self.ehr, self.sleep, self.alive)

    @classmethod
    def transactions(cls, ehr: Deliveries) -> Writer:
        """A writer that sends every part as one transaction and reads no capabilities."""
        return cls(ehr, Capabilities.unknown, None, "transaction")

    def chosen(self, caps: Capabilities) -> str:
        """The strategy for the next part: the configured one, or the best advertised and not refused."""
        if self.strategy != "auto":
            return self.strategy
        found = caps.strategy()
        refused = self._refused.get(caps.digest, set())
        # Past the kinds refused, and past those the statement does not advertise either.
        while found in STEP_DOWN and (found in refused or (caps.known and found not in caps.system)):
            found = STEP_DOWN[found]
        return found

    def write(self, part: Resource, *, done: dict[str, dict[str, Any]] | None = None,
              record: Record | None = None, alive: Callable[[], None] | None = None) -> Resource:
        """Write one part; its answer (see the module doc), or an EhrError. ``done``: the answers to
        its entries already written (recorded by an earlier attempt), which are not written again;
        ``alive``: called before each request."""
        return (replace(self, alive=alive) if alive else self)._write(part, done, record)

    def withdraw(self, part: Resource, *, done: dict[str, dict[str, Any]] | None = None,
                 record: Record | None = None, alive: Callable[[], None] | None = None) -> Resource:
        """Apply a withdrawal part (``ehr.withdrawals``): find its head in the EHR, then update each of
        its members and the head itself whose status changes (``If-Match``), recording each answer
        (``record``, by ``Type/id``) so that a retry goes on where it stopped. Its answer has one
        entry per resource looked at; NothingToWithdraw when the EHR holds no such head."""
        return (replace(self, alive=alive) if alive else self)._withdraw(part, done, record)

    def _write(self, part: Resource, done: dict[str, dict[str, Any]] | None, record: Record | None) -> Resource:
        caps = self.capabilities()
        entries = [self._entry(e) for e in part.get("entry") or []]
        missing = caps.missing_writes({e.type for e in entries})
        if missing:
            raise EhrUnsupported(f"the EHR does not advertise {', '.join(missing)} in its CapabilityStatement: "
                                 "these resources cannot be written there (see docs/ehr-compatibility.md)")
        for entry in entries:
            entry.answer = (done or {}).get(entry.full_url)
        save = record or (lambda answers: None)
        while True:
            strategy = self.chosen(caps)
            if strategy != "transaction":
                self._check_cycles(entries, caps)
            try:
                if strategy == "per-resource":
                    self._one_by_one(entries, caps, save)
                else:
                    self._bundles(strategy, entries, caps, save, part)
                break
            except EhrUnsupported:
                if self.strategy != "auto" or strategy not in STEP_DOWN:
                    raise
                # The EHR does not take this Bundle kind after all (405, 501, not-supported, or a
                # batch-response to a transaction): the next strategy, for this part and the next.
                log.warning("the EHR refused a Bundle kind; stepping down", extra={"strategy": strategy})
                self._refused.setdefault(caps.digest, set()).add(strategy)
        return {"resourceType": "Bundle", "type": "transaction-response",
                "entry": [{"response": dict(entry.answer or {})} for entry in entries]}

    def _withdraw(self, part: Resource, done: dict[str, dict[str, Any]] | None, record: Record | None) -> Resource:
        action = action_of(part)
        if action is None:
            raise ValueError("not a withdrawal part")
        head_type, member_types = WITHDRAWS[action]
        caps = self.capabilities()
        missing = [f"update {t}" for t in sorted({head_type, *member_types}) if not caps.can(t, "update")]
        if missing:
            raise EhrUnsupported(f"the EHR does not advertise {', '.join(missing)} in its CapabilityStatement: "
                                 "the status cannot be changed there (see docs/ehr-compatibility.md)")
        stub = self._entry(part["entry"][0])
        found = self._find(stub, caps, {})
        if found is None:
            raise NothingToWithdraw(f"the EHR holds no {head_type} with the identifier {stub.identifier}: nothing to withdraw")
        head = found if found.resource is not None else self.calls.read(head_type, str(found.id))
        statements = self._statements(stub, caps) if action == "retract-diary" else []
        if statements and not caps.can(STATEMENT, "update"):
            raise EhrUnsupported(f"the EHR does not advertise update {STATEMENT} in its CapabilityStatement: "
                                 "the status cannot be changed there (see docs/ehr-compatibility.md)")
        reason = next((n.get("text") for n in stub.resource.get("note") or [] if isinstance(n, dict)), None)
        answers = dict(done or {})
        save = record or (lambda answers: None)
        for reference in [*members(head.resource or {}), *statements, f"{head_type}/{head.id}"]:
            if reference in answers:
                continue
            kind, _, resource_id = reference.partition("/")
            current = head if reference == f"{head_type}/{head.id}" else self.calls.read(kind, resource_id)
            administered = self._administered(reference, caps) if kind == "MedicationRequest" else None
            changed = withdrawn(current.resource or {}, action, administered=administered, reason=reason)
            written = current if changed is None else self._put(kind, changed, current)
            ident = business_identifier(changed or current.resource or {})
            if self.known is not None and ident is not None and written.id is not None:
                # What the EHR now holds: a re-send of the original is a change, refused (never revived).
                self.known.put(kind, ident, Known(str(written.id), written.version, "withdrawn", {}))
            answers[reference] = {"status": "200 OK", "location": _location(kind, written)}
            save({reference: answers[reference]})
        return {"resourceType": "Bundle", "type": "transaction-response",
                "entry": [{"response": dict(answer)} for answer in answers.values()]}

    def _statements(self, stub: Entry, caps: Capabilities) -> list[str]:
        """``MedicationStatement/<id>`` of each medication of the retracted entry the EHR holds (a
        day's ``hasMember`` cannot name them): the patient's, searched once, else by identifier one
        index after the other; EhrUnsupported when the EHR offers neither search."""
        entry_id = str(stub.identifier).partition("|")[2]
        patient, param = _patient(stub.resource), caps.patient_param(STATEMENT)
        if patient is not None and param is not None:
            params = {param: patient}
            if caps.searches(STATEMENT, "identifier"):
                params["identifier"] = f"{escaped(DIARY_SYSTEM)}|"
            found = [r for page in self.calls.search(STATEMENT, params) for r in _resources(page, STATEMENT)
                     if statement_of(r, entry_id)]
            return [f"{STATEMENT}/{r.get('id')}" for r in found]
        if not caps.searches(STATEMENT, "identifier"):
            raise EhrUnsupported(f"the EHR offers no search of {STATEMENT} by patient or identifier: the diary entry's "
                                 "medications cannot be found to retract them (see docs/ehr-compatibility.md)")
        by_index: list[str] = []
        for index in itertools.count():
            value = diary_value(entry_id, "medication", index)
            matches = [r for page in self.calls.search(STATEMENT, {"identifier": token(DIARY_SYSTEM, value)})
                       for r in _resources(page, STATEMENT) if _carries(r, f"{DIARY_SYSTEM}|{value}")]
            if not matches:
                break
            by_index += [f"{STATEMENT}/{r.get('id')}" for r in matches]
        return by_index

    def _administered(self, reference: str, caps: Capabilities) -> bool | None:
        """Whether the EHR shows a MedicationAdministration of the request; None when it cannot be asked."""
        if not caps.searches("MedicationAdministration", "request"):
            return None
        return any(_resources(page, "MedicationAdministration")
                   for page in self.calls.search("MedicationAdministration", {"request": reference}))

    def _put(self, kind: str, resource: Resource, current: Written) -> Written:
        try:
            return self.calls.update(resource, if_match=f'W/"{current.version}"' if current.version else None)
        except EhrRejected as error:
            if error.status == 412:
                raise EhrConflict(f"{kind}/{current.id} changed in the EHR while its status was being changed",
                                  status=412, outcome=error.outcome) from None
            raise

    # --- the strategies ---------------------------------------------------------------------------

    def _one_by_one(self, entries: list[Entry], caps: Capabilities, save: Record) -> None:
        later = self._found_first(entries, caps, save)
        for layer in layers([{"fullUrl": e.full_url, "resource": e.resource} for e in entries]):
            for entry in (entries[i] for i in layer if entries[i].answer is None):
                self._create(entry, entries, caps, later, save)
        self._settle_later(entries, later, caps, save)

    def _create(self, entry: Entry, entries: list[Entry], caps: Capabilities, later: list[tuple[Entry, Written]],
                save: Record) -> None:
        resource, partial = self._as_far_as_known(entry, entries, caps)
        if caps.conditional_create(entry.type) and entry.identifier:
            written = self.calls.create(resource, if_none_exist=self._query(entry))
        else:
            written = self.calls.create(resource)
        self._written(entry, written, partial, later, save)

    def _bundles(self, kind: str, entries: list[Entry], caps: Capabilities, save: Record, part: Resource) -> None:
        later = self._found_first(entries, caps, save)
        groups = [[i for i in range(len(entries)) if entries[i].answer is None]] if kind == "transaction" else \
            layers([{"fullUrl": e.full_url, "resource": e.resource} for e in entries])
        for group in groups:
            todo = [entries[i] for i in group if entries[i].answer is None]
            if not todo:
                continue
            # A transaction resolves the urn:uuid references between its entries itself; a batch does not.
            sent = [(e, *((rewrite(e.resource, self._ids(entries)), False) if kind == "transaction"
                          else self._as_far_as_known(e, entries, caps))) for e in todo]
            if any(partial for _, _, partial in sent):
                # Entries that refer to each other (a cycle): one at a time, each with the ids of those before.
                for entry in todo:
                    self._create(entry, entries, caps, later, save)
                continue
            bundle = {**{k: v for k, v in part.items() if k not in ("type", "entry")}, "type": kind,
                      "entry": [self._bundle_entry(e, resource, caps) for e, resource, _ in sent]}
            answer = self.calls.transaction(bundle)
            for (entry, _, partial), answered in zip(sent, answer.get("entry") or [], strict=True):
                response = answered.get("response") or {}
                written = _from_response(entry.type, response)
                if written.id is None and kind == "transaction":
                    # Committed with the others (the EHR resolved their references itself), but with no
                    # location: kept as answered, and nothing recorded of where it is.
                    entry.answer = dict(response)
                    save({entry.full_url: entry.answer})
                else:
                    self._written(entry, written, partial, later, save)
        self._settle_later(entries, later, caps, save)

    def _check_cycles(self, entries: list[Entry], caps: Capabilities) -> None:
        """EhrUnsupported, before anything is written, when resources of the part refer to each other
        and the EHR advertises no update of their types (one of them is completed by an update)."""
        cycle = in_cycles([{"fullUrl": e.full_url, "resource": e.resource} for e in entries])
        missing = sorted({entries[i].type for i in cycle if not caps.can(entries[i].type, "update")})
        if missing:
            raise EhrUnsupported(f"resources of this part refer to each other, which takes an update after they are"
                                 f" created, and the EHR advertises no update of {', '.join(missing)}")

    def _found_first(self, entries: list[Entry], caps: Capabilities, save: Record) -> list[tuple[Entry, Written]]:
        """Look for the entries the EHR cannot create conditionally, all before anything is written,
        so that what refers to them is written with their ids. Those found are compared (and
        updated) at the end, once every id of the part is known."""
        lookups: dict[tuple[str, str], dict[str, list[Resource]]] = {}
        found: list[tuple[Entry, Written]] = []
        for entry in entries:
            if entry.answer is None and not (caps.conditional_create(entry.type) and entry.identifier):
                existing = self._find(entry, caps, lookups)
                if existing is not None:
                    self._answer(entry, existing)
                    found.append((entry, existing))
        return found

    def _as_far_as_known(self, entry: Entry, entries: list[Entry], caps: Capabilities) -> tuple[Resource, bool]:
        """The entry's resource with its references to the part's entries rewritten to their ids in
        the EHR, and whether some could not be (the part's resources refer to each other in a
        cycle, as an order's DHE request and the DetectedIssue implicating it do): those references
        are left out, and put back by an update once the others exist."""
        resource = rewrite(entry.resource, self._ids(entries))
        pending = references(resource) & {e.full_url for e in entries}
        if not pending:
            return resource, False
        if not caps.can(entry.type, "update"):
            raise EhrUnsupported(f"resources of this part refer to each other, which takes an update of {entry.type}"
                                 " after both are created, and the EHR advertises none")
        return without_references(resource, pending), True

    def _written(self, entry: Entry, written: Written, partial: bool, later: list[tuple[Entry, Written]],
                 save: Record) -> None:
        """Record what one create did: done, or (partly written, or a conditional create that found
        the resource) its id now and its comparison at the end."""
        if written.created and not partial:
            self._done(entry, written)
            save({entry.full_url: entry.answer or {}})
            return
        entry.created = written.created
        self._answer(entry, written)
        if partial and written.created and self.known is not None and entry.identifier is not None:
            # Where it is, with no content recorded: a retry finds it and completes it.
            self.known.put(entry.type, entry.identifier, Known(str(written.id), written.version, "", {}))
        later.append((entry, written))

    def _settle_later(self, entries: list[Entry], later: list[tuple[Entry, Written]], caps: Capabilities,
                      save: Record) -> None:
        for entry, existing in later:
            self._done(entry, self._settle(entry, rewrite(entry.resource, self._ids(entries)), existing, caps))
            save({entry.full_url: entry.answer or {}})

    def _bundle_entry(self, entry: Entry, resource: Resource, caps: Capabilities) -> Resource:
        request: dict[str, Any] = {"method": "POST", "url": entry.type}
        if caps.conditional_create(entry.type) and entry.identifier:
            request["ifNoneExist"] = self._query(entry)
        return {"fullUrl": entry.full_url, "resource": resource, "request": request}

    # --- finding, comparing, updating -------------------------------------------------------------

    def _find(self, entry: Entry, caps: Capabilities,
              lookups: dict[tuple[str, str], dict[str, list[Resource]]]) -> Written | None:
        """The resource the EHR already holds with the entry's identifier, None when it holds none."""
        if entry.identifier is None:
            return None
        patient = _patient(entry.resource)
        param = caps.patient_param(entry.type)
        if caps.searches(entry.type, "identifier"):
            matches = [r for page in self.calls.search(entry.type, {"identifier": self._search_value(entry)})
                       for r in _resources(page, entry.type) if _carries(r, entry.identifier)]
        elif patient is not None and param is not None:
            key = (entry.type, patient)
            if key not in lookups:  # the patient's resources of the type, read once per part
                lookups[key] = {}
                for page in self.calls.search(entry.type, {param: patient}):
                    for resource in _resources(page, entry.type):
                        ident = business_identifier(resource)
                        if ident is not None:
                            lookups[key].setdefault(ident, []).append(resource)
            matches = lookups[key].get(entry.identifier, [])
        else:
            return self._recorded(entry)
        if len(matches) > 1:
            raise EhrRejected(f"{len(matches)} {entry.type} resources in the EHR carry the identifier of one entry: "
                              "not guessing which one is meant (remove the duplicates in the EHR)")
        if not matches:
            return None
        meta = matches[0].get("meta") if isinstance(matches[0].get("meta"), dict) else {}
        return Written(200, matches[0].get("id"), (meta or {}).get("versionId"), matches[0])

    def _recorded(self, entry: Entry) -> Written | None:
        """The resource this service recorded writing, read to see that the EHR still holds it."""
        known = self.known.get(entry.type, entry.identifier) if self.known and entry.identifier else None
        if known is None:
            return None
        try:
            return self.calls.read(entry.type, known.id)
        except EhrRejected as error:
            if error.status in (404, 410):
                return None
            raise

    def _settle(self, entry: Entry, resource: Resource, existing: Written, caps: Capabilities) -> Written:
        """An entry the EHR already holds: as it is when it holds what is sent, updated otherwise;
        AmendmentRefused when the EHR holds it withdrawn (cancelled, stopped, entered in error)."""
        held = (existing.resource or {}).get("status")
        final = FINAL.get(entry.type, frozenset())
        if held in final and resource.get("status") not in final:
            raise AmendmentRefused(f"the EHR holds {entry.type}/{existing.id} as {held}, which a re-send does not undo",
                                   changed=["status"])
        known = self.known.get(entry.type, entry.identifier) if self.known and entry.identifier else None
        if known is not None and known.id == existing.id:
            if known.digest == entry.digest:
                return existing
            changed = changed_elements(known.elements, entry.elements)
            current = existing
        else:
            current = existing if existing.resource is not None else self.calls.read(entry.type, str(existing.id))
            changed = differs_from(resource, current.resource or {})
            if not changed:
                return existing
        return self._update(entry, resource, current, changed, caps)

    def _update(self, entry: Entry, resource: Resource, current: Written, changed: list[str],
                caps: Capabilities) -> Written:
        named = ", ".join(changed) or "content"
        refused = (f"the EHR holds {entry.type}/{current.id} with other content ({named} changed) and"
                   f" {{}}: the change is not in the EHR")
        if not caps.can(entry.type, "update"):
            raise AmendmentRefused(refused.format(f"advertises no update of {entry.type}"), changed=changed)
        if current.version is None or current.resource is None:
            current = self.calls.read(entry.type, str(current.id))
        held = (current.resource or {}).get("status")
        if held in FINAL.get(entry.type, frozenset()) and resource.get("status") not in FINAL.get(entry.type, frozenset()):
            # Cancelled, stopped or entered in error in the EHR: a re-send does not bring it back.
            raise AmendmentRefused(refused.format(f"holds it as {held}, which a re-send does not undo"), changed=changed)
        try:
            return self.calls.update({**resource, "id": current.id},
                                   if_match=f'W/"{current.version}"' if current.version else None)
        except EhrUnsupported as error:
            raise AmendmentRefused(refused.format(f"refuses to update it ({error.message})"), changed=changed,
                                   status=error.status, outcome=error.outcome) from None
        except EhrRejected as error:
            if error.status == 412:  # changed in the EHR since it was read: read it again at the next attempt
                raise EhrConflict(f"{entry.type}/{current.id} changed in the EHR while it was being updated",
                                  status=412, outcome=error.outcome) from None
            raise

    # --- bookkeeping ------------------------------------------------------------------------------

    def _entry(self, entry: Resource) -> Entry:
        resource = entry["resource"]
        return Entry(entry["fullUrl"], resource, business_identifier(resource), digest(resource),
                     element_digests(resource))

    def _answer(self, entry: Entry, written: Written) -> None:
        if written.id is None:
            raise EhrError(f"the EHR wrote a {entry.type} without telling its id (no body and no Location)")
        entry.answer = {"status": "201 Created" if entry.created else _status(written),
                        "location": _location(entry.type, written)}

    def _done(self, entry: Entry, written: Written) -> None:
        """The entry is in the EHR as sent: its answer, and (``known``) what was written where."""
        self._answer(entry, written)
        if self.known is not None and entry.identifier is not None:
            self.known.put(entry.type, entry.identifier, Known(str(written.id), written.version, entry.digest, entry.elements))

    @staticmethod
    def _ids(entries: list[Entry]) -> dict[str, str]:
        return {e.full_url: ref for e in entries if (ref := e.reference) is not None}

    @staticmethod
    def _search_value(entry: Entry) -> str:
        system, _, value = str(entry.identifier).partition("|")
        return token(system, value)

    def _query(self, entry: Entry) -> str:
        """The ``If-None-Exist`` query: the search by the entry's identifier, as a query string."""
        system, _, value = str(entry.identifier).partition("|")
        return if_none_exist({"system": system, "value": value})


def _resources(page: Resource, resource_type: str) -> list[Resource]:
    return [e["resource"] for e in page.get("entry") or []
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            and e["resource"].get("resourceType") == resource_type
            and (e.get("search") or {}).get("mode", "match") == "match"]


def _from_response(resource_type: str, response: Resource) -> Written:
    """What one entry of a transaction or batch answer says (``status``, ``location``, ``etag``)."""
    status = status_code(response.get("status")) or 0
    headers = {"Location": response.get("location") or "", "ETag": response.get("etag") or ""}
    return read_answer(status, headers, None, resource_type)
