"""A group of patients pulled at once with FHIR Bulk Data (the group-level ``$export``), or one
patient at a time where the EHR does not offer it; either way each member's resources become the
same searchset Bundle a single pull makes (``ehr.pull``), so they are unmapped and reported alike.

Bulk Data (https://hl7.org/fhir/uv/bulkdata/export.html): the kick-off ``GET [base]/Group/[id]/$export``
with ``Prefer: respond-async`` and ``_type`` (the types of this project) is answered 202 with a
status URL in ``Content-Location``; the status URL answers 202 while the export runs (waited on as
its ``Retry-After`` says, within the pull's time-out) and then 200 with a manifest listing one or
more NDJSON files per type. Each file is streamed to disk in a private folder (0700, files 0600:
they hold PHI), read line by line, and deleted with the folder (``GroupPull.close``; folders a
stopped process left behind are swept: ``sweep``); the export is then deleted on the EHR
(``DELETE`` on the status URL) as the specification asks of a client done with it. The exported
files are sorted into one file per member in the same folder as they are read, so only one
member's resources are in memory at a time, however large the group.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fhir_migraine.ehr.interface import Exports, ExportStatus, Resource, Written
from fhir_migraine.ehr.pull import SEARCHES, changed_before, has_system, instant_text, since_instant
from fhir_migraine.errors import EhrError, EhrRejected, EhrTimeout, EhrUnavailable, InputError, Problem
from fhir_migraine.inputs.orders import parse_instant

log = logging.getLogger(__name__)

#: The types a group export asks for: those a single pull searches.
EXPORT_TYPES = tuple(sorted({t for t, _ in SEARCHES}))
#: The identifier systems of this project each type is kept for (as a single pull keeps them).
SYSTEMS = {t: frozenset(s for u, s in SEARCHES if u == t) for t in EXPORT_TYPES}
_GROUP = re.compile(r"^(Group/)?([A-Za-z0-9\-.]{1,64})$")
_PATIENT = re.compile(r"^Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
#: The shortest wait between two questions to the status URL, whatever Retry-After says, and the
#: longest when the EHR says nothing (waits grow 1, 2, 4… s up to it).
MIN_WAIT, MAX_WAIT = 0.5, 60.0
#: The prefix of an export's private folder; one older than ``STALE_EXPORT_S`` is a stopped process's.
FOLDER_PREFIX = "fhir-migraine-bulk-"
STALE_EXPORT_S = 24 * 3600.0


class BulkEhr(Exports, Protocol):
    """What a group pull needs of the EHR (``client.FhirClient`` provides it)."""

    base_url: str

    def read(self, resource_type: str, resource_id: str) -> Written: ...


def group_reference(text: str) -> str:
    """``Group/12`` from ``Group/12`` or ``12``; InputError naming ``$.group`` otherwise."""
    match = _GROUP.match(text) if isinstance(text, str) else None
    if not match:
        raise InputError.of([Problem("$.group", f"{text!r} is not a group reference such as Group/12")], "request")
    return f"Group/{match.group(2)}"


def patient_of(resource: Resource, base: str = "") -> str | None:
    """``Patient/<id>`` of the resource's ``subject`` (or ``patient``): a relative reference, or an
    absolute one on the EHR's ``base`` URL; None when it names no patient of this EHR."""
    for name in ("subject", "patient"):
        found = resource.get(name)
        reference = found.get("reference") if isinstance(found, dict) else None
        if isinstance(reference, str) and base and reference.startswith(f"{base}/"):
            reference = reference[len(base) + 1:]
        if isinstance(reference, str) and (match := _PATIENT.match(reference)):
            return f"Patient/{match.group(1)}"
    return None


def members(group: Resource, base: str = "") -> list[str]:
    """The patients of a Group (``member.entity`` naming a Patient, not ``inactive``), in its order,
    each once; EhrUnavailable when the EHR's answer is not a Group."""
    if not isinstance(group, dict) or group.get("resourceType") != "Group":
        raise EhrUnavailable("the EHR answered the group read with something that is not a Group")
    found: list[str] = []
    for member in group.get("member") or []:
        if not isinstance(member, dict) or member.get("inactive") is True:
            continue
        patient = patient_of({"subject": member.get("entity")}, base)
        if patient is not None and patient not in found:
            found.append(patient)
    return found


def keeps(resource: Any) -> bool:
    """Whether an exported resource is one a single pull keeps: of an exported type, with an id, and
    carrying an identifier of this project's system for that type."""
    if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
        return False
    return any(has_system(resource, system) for system in SYSTEMS.get(str(resource.get("resourceType")), ()))


def searchset(resources: list[Resource], last_updated: str | None, warnings: list[str]) -> Resource:
    """A member's resources as the searchset Bundle a single pull makes: one entry per resource (the
    first of each ``Type/id``), ``total``, ``meta.lastUpdated`` (the export's ``transactionTime``),
    and the export's problems as an OperationOutcome entry of ``search.mode`` ``outcome``."""
    entries: list[Resource] = []
    seen: set[str] = set()
    for resource in resources:
        key = f"{resource['resourceType']}/{resource['id']}"
        if key not in seen:
            seen.add(key)
            entries.append({"fullUrl": key, "resource": resource, "search": {"mode": "match"}})
    bundle: Resource = {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
    if warnings:
        issues = [{"severity": "warning", "code": "incomplete", "diagnostics": w} for w in warnings]
        entries.append({"resource": {"resourceType": "OperationOutcome", "issue": issues}, "search": {"mode": "outcome"}})
    if last_updated is not None:
        bundle["meta"] = {"lastUpdated": last_updated}
    return bundle


@dataclass
class Exported:
    """What an export left on disk: the NDJSON files of the resources and of the EHR's errors,
    and the export's ``transactionTime`` (the EHR's clock when it began)."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    error_files: list[Path] = field(default_factory=list)
    transaction_time: str | None = None


@dataclass(frozen=True)
class GroupPull:
    """A group's pull: how it was made (``bulk`` or ``per-patient``), its members, and each
    member's searchset Bundle (as ``(patient, bundle)``, in member order). ``close`` deletes what
    the pull holds on disk; call it when done, also when the bundles were not all read."""

    group: str
    method: str
    members: list[str]
    bundles: Iterator[tuple[str, Resource]]
    close: Callable[[], None] = lambda: None


class BulkPuller:
    """Runs a group's export against one EHR: kick-off, waits, downloads, and reading back."""

    def __init__(self, ehr: BulkEhr, *, timeout: float, max_file_bytes: int, folder: str | None = None,
                 sleep: Callable[[float], object] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 alive: Callable[[], bool] = lambda: True) -> None:
        self.ehr, self.timeout, self.max_file_bytes, self.folder = ehr, timeout, max_file_bytes, folder
        self.sleep, self.clock = sleep, clock
        self.alive = alive  # asked between waits: False stops the export (its job's lease was lost)

    def export(self, group: str, *, since: str | None = None) -> Exported:
        """Kick off the group's export, wait for it, and stream its files to a new private folder
        (the caller deletes it: ``discard``). EhrUnsupported when the EHR refuses the kick-off as
        something it does not do (405, 501, ``not-supported``) or answers it with anything but 202;
        EhrTimeout past ``timeout``; the EHR's error answers as their EhrError."""
        params = {"_type": ",".join(EXPORT_TYPES)}
        if since is not None:
            params["_since"] = since
        status_url = self.ehr.kick_off(f"{group}/$export", params)
        log.info("bulk export started")
        try:
            manifest = self._wait(status_url)
            return self._download(manifest)
        finally:
            try:
                self.ehr.delete_export(status_url)
            except EhrError as error:  # the EHR deletes the files itself after a while
                log.info("bulk export not deleted on the EHR", extra={"error_type": type(error).__name__})

    def _wait(self, status_url: str) -> Resource:
        started = self.clock()
        backoff = MIN_WAIT
        while True:
            try:
                status = self.ehr.export_status(status_url)
            except EhrUnavailable as error:
                if isinstance(error, EhrTimeout) or not _transient(error):
                    raise  # an error status: the export failed (Bulk Data, "Response - Error Status")
                status = ExportStatus(None, error.retry_after)  # busy: asked again after Retry-After
            if status.manifest is not None:
                return status.manifest
            backoff = min(MAX_WAIT, backoff * 2)
            wait = max(MIN_WAIT, status.retry_after if status.retry_after is not None else backoff)
            if self.clock() - started + wait > self.timeout:
                raise EhrTimeout(f"the EHR's export did not finish within {self.timeout:g} s (FHIR_MIGRAINE_BULK_TIMEOUT)")
            self._check_alive()
            self.sleep(wait)

    def _check_alive(self) -> None:
        if not self.alive():
            raise EhrUnavailable("the export was given up: the pull is stopping or was taken over")

    def _download(self, manifest: Resource) -> Exported:
        outputs, errors = manifest.get("output"), manifest.get("error", [])
        if not isinstance(outputs, list) or not isinstance(errors, list) \
                or not all(isinstance(o, dict) and isinstance(o.get("url"), str) for o in [*outputs, *errors]):
            raise EhrUnavailable("the EHR's export manifest has no list of output files with their url")
        stamp = manifest.get("transactionTime")
        when = parse_instant(stamp) if isinstance(stamp, str) else None
        authorized = manifest.get("requiresAccessToken") is not False
        exported = Exported(Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=self.folder)),
                            transaction_time=instant_text(when) if when is not None else None)
        files = [(o, exported.files) for o in outputs if o.get("type") in EXPORT_TYPES]  # an EHR may add others
        try:
            for number, (item, kept) in enumerate([*files, *((e, exported.error_files) for e in errors)]):
                self._check_alive()
                path = exported.folder / f"{number:05d}.ndjson"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    self.ehr.download(item["url"], out, authorized=authorized, limit=self.max_file_bytes)
                kept.append(path)
        except BaseException:
            discard(exported)
            raise
        log.info("bulk export downloaded", extra={"count": len(exported.files)})
        return exported


def _transient(error: EhrUnavailable) -> bool:
    """Whether a failed question to the status URL is to be asked again: 429 or 503 (busy), or an
    OperationOutcome saying ``transient`` (Bulk Data: a failure of the polling, not of the export)."""
    issues = error.outcome.get("issue") if isinstance(error.outcome, dict) else None
    return error.status in (429, 503) or any(isinstance(i, dict) and i.get("code") == "transient" for i in issues or [])


def discard(exported: Exported) -> None:
    """Delete an export's folder and its files."""
    shutil.rmtree(exported.folder, ignore_errors=True)


def sweep(folder: str | None, *, older_than: float = STALE_EXPORT_S, now: float | None = None) -> int:
    """Delete the export folders a stopped or killed process left in ``folder`` (the system's
    temporary folder when None), once older than ``older_than`` seconds; how many."""
    where = Path(folder or tempfile.gettempdir())
    cutoff = (time.time() if now is None else now) - older_than
    swept = 0
    for path in where.glob(f"{FOLDER_PREFIX}*"):
        try:
            found = path.stat()
            stale = path.is_dir() and found.st_mtime < cutoff and found.st_uid == os.getuid()
        except OSError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            swept += 1
    return swept


def spool_export(exported: Exported, patients: list[str], *, since: str | None = None, base: str = "") -> list[str]:
    """Sort the exported resources of this project into one file per member (``member_file``), and
    answer the warnings to report with every member (counts only: they go to every member's
    result). Left out: resources of patients outside the group, those changed before ``since`` by
    their ``meta.lastUpdated`` (a group export may add older resources of members who joined the
    group later; a single pull would not give them), and lines that are not JSON objects; the
    EHR's error files are counted."""
    position = {p: i for i, p in enumerate(patients)}
    start = since_instant(since)
    unreadable = outside = 0
    for path in exported.files:
        with path.open("rb") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    resource = json.loads(line)
                except (ValueError, RecursionError):
                    resource = None
                if not isinstance(resource, dict):
                    unreadable += 1
                    continue
                if not keeps(resource) or (start is not None and changed_before(resource, start)):
                    continue  # another type, none of this project's, or not changed since
                number = position.get(patient_of(resource, base) or "")
                if number is None:
                    outside += 1
                    continue
                fd = os.open(member_file(exported, number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(line.rstrip(b"\r\n") + b"\n")
    warnings = []
    if unreadable:
        warnings.append(f"{unreadable} line(s) of the EHR's export were not FHIR resources in JSON and were left out")
    if outside:
        warnings.append(f"{outside} exported resource(s) of patients outside the group were left out")
    if errors := _count_errors(exported.error_files):
        warnings.append(f"the EHR's export listed {errors} error(s) (OperationOutcome): some resources may be missing")
    return warnings


def member_file(exported: Exported, number: int) -> Path:
    """Where the resources of the group's ``number``-th member are sorted to."""
    return exported.folder / f"member-{number:07d}.ndjson"


def _count_errors(paths: list[Path]) -> int:
    """How many issues the OperationOutcomes of the export's error files hold (their text may name a
    patient, so it is not copied into every member's result)."""
    count = 0
    for path in paths:
        with path.open("rb") as lines:
            for line in lines:
                try:
                    outcome = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                issues = outcome.get("issue") if isinstance(outcome, dict) else None
                count += len(issues) if isinstance(issues, list) else 0
    return count


def group_members(ehr: BulkEhr, group: str) -> list[str]:
    """The group's patients, read from the EHR (``GET Group/<id>``); EhrRejected when it has none."""
    answer = ehr.read("Group", group.removeprefix("Group/"))
    found = members(answer.resource or {}, ehr.base_url)
    if not found:
        raise EhrRejected(f"{group} has no active Patient members in the EHR: there is no one to pull")
    return found


def bulk_bundles(exported: Exported, patients: list[str], *, since: str | None = None,
                 base: str = "") -> Iterator[tuple[str, Resource]]:
    """Each member's searchset Bundle from an export on disk, read one member at a time; the
    export's folder is deleted once they are all read (or when the iteration is closed)."""
    try:
        warnings = spool_export(exported, patients, since=since, base=base)
        for number, patient in enumerate(patients):
            path = member_file(exported, number)
            with path.open("rb") if path.exists() else nullcontext(()) as lines:
                resources = [json.loads(line) for line in lines]
            yield patient, searchset(resources, exported.transaction_time, warnings)
    finally:
        discard(exported)
