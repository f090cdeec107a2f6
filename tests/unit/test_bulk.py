"""A group's pull by FHIR Bulk Data against an EHR double: the kick-off, waiting as Retry-After
says, the files streamed to a private folder and deleted, the members' Bundles as a single pull
makes them, the EHR's errors reported, and the fall back to one pull per patient."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import pytest

from fhir_migraine.config import Settings
from fhir_migraine.ehr import bulk
from fhir_migraine.ehr.bulk import BulkPuller, group_reference, keeps, members, patient_of
from fhir_migraine.ehr.capabilities import read_capabilities
from fhir_migraine.ehr.gateway import EhrGateway
from fhir_migraine.ehr.interface import ExportStatus, Page, Written
from fhir_migraine.errors import EhrRejected, EhrTimeout, EhrUnavailable, EhrUnsupported, InputError
from fhir_migraine.identifiers import DIARY_SYSTEM, ORDER_STEP_SYSTEM

Resource = dict[str, Any]
STATUS = "http://ehr.test/fhir/$export-poll-status?_jobId=1"


def observation(patient: str, value: str, system: str = DIARY_SYSTEM) -> Resource:
    return {"resourceType": "Observation", "id": f"o-{value}", "status": "final", "code": {"text": "day"},
            "subject": {"reference": patient}, "identifier": [{"system": system, "value": value}]}


def request(patient: str, value: str) -> Resource:
    return {"resourceType": "MedicationRequest", "id": f"m-{value}", "status": "draft", "intent": "order",
            "subject": {"reference": f"http://ehr.test/fhir/{patient}"},
            "identifier": [{"system": ORDER_STEP_SYSTEM, "value": value}]}


def ndjson(*resources: Any) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in resources)


GROUP = {"resourceType": "Group", "id": "7", "type": "person", "actual": True, "member": [
    {"entity": {"reference": "Patient/a"}}, {"entity": {"reference": "Patient/b"}},
    {"entity": {"reference": "Patient/gone"}, "inactive": True}, {"entity": {"reference": "Patient/a"}},
    {"entity": {"reference": "Device/x"}}]}


@dataclass
class ExportingEhr:
    """An EHR that exports: ``waits`` answers of 202 (with ``retry``) before the manifest, ``files``
    by URL, ``fail_status``: an EhrError the status URL raises once, ``kick_off_error``: what the
    kick-off raises."""

    files: dict[str, bytes]
    manifest: Resource | None = None
    waits: int = 2
    retry: float | None = 3.0
    fail_status: Exception | None = None
    kick_off_error: Exception | None = None
    group: Resource = field(default_factory=lambda: GROUP)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    base_url: str = "http://ehr.test/fhir"
    statement: Resource | None = None
    pages_of: dict[str, list[Resource]] = field(default_factory=dict)

    def read(self, resource_type: str, resource_id: str) -> Written:
        self.calls.append(("read", f"{resource_type}/{resource_id}"))
        return Written(200, resource_id, "1", self.group)

    def kick_off(self, path: str, params: dict[str, str]) -> str:
        self.calls.append(("kick_off", (path, params)))
        if self.kick_off_error is not None:
            raise self.kick_off_error
        return STATUS

    def export_status(self, status_url: str) -> ExportStatus:
        self.calls.append(("status", status_url))
        if self.fail_status is not None:
            error, self.fail_status = self.fail_status, None
            raise error
        if self.waits:
            self.waits -= 1
            return ExportStatus(None, self.retry, "in progress")
        return ExportStatus(self.manifest or {
            "transactionTime": "2026-11-30T10:00:00Z", "requiresAccessToken": True,
            "output": [{"type": "Observation", "url": url} for url in self.files if "error" not in url],
            "error": [{"type": "OperationOutcome", "url": url} for url in self.files if "error" in url]})

    def delete_export(self, status_url: str) -> None:
        self.calls.append(("delete", status_url))

    def download(self, url: str, out: IO[bytes], *, authorized: bool, limit: int) -> int:
        self.calls.append(("download", (url, authorized)))
        out.write(self.files[url])
        return len(self.files[url])

    # What a single pull needs, for the fall back.
    def metadata(self) -> Resource:
        return self.statement or {"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "resource": [
            {"type": "Group", "interaction": [{"code": "read"}], "operation": [{"name": "export"}]},
            *({"type": t, "interaction": [{"code": "search-type"}]} for t in bulk.EXPORT_TYPES)]}]}

    def get_page(self, url: str, params: dict[str, str] | None = None) -> Page:
        resource_type, params = url.rsplit("/", 1)[1], dict(params or {})
        self.calls.append(("search", (resource_type, params)))
        patient = params.get("patient") or params.get("subject")
        found = [r for r in self.pages_of.get(resource_type, []) if patient_of(r) == patient]
        return Page({"resourceType": "Bundle", "type": "searchset", "meta": {"lastUpdated": "2026-11-30T10:00:00Z"},
                     "entry": [{"resource": r} for r in found]})


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def puller(ehr: ExportingEhr, tmp_path: Path, **kwargs: Any) -> tuple[BulkPuller, Sleeps]:
    sleeps = Sleeps()  # the clock moves only when the puller sleeps
    defaults: dict[str, Any] = {"timeout": 600.0, "max_file_bytes": 10_000, "folder": str(tmp_path)}
    return BulkPuller(ehr, sleep=sleeps, clock=lambda: float(sum(sleeps)), **(defaults | kwargs)), sleeps


# --- what is read of the Group and of each resource -------------------------------------------------

def test_the_members_are_the_groups_active_patients_each_once() -> None:
    assert members(GROUP) == ["Patient/a", "Patient/b"]
    with pytest.raises(EhrUnavailable):
        members({"resourceType": "Patient"})


@pytest.mark.parametrize("text", ["Group/7", "7", "Group/abc-1.2"])
def test_a_group_reference_is_read(text: str) -> None:
    assert group_reference(text) == f"Group/{text.removeprefix('Group/')}"


@pytest.mark.parametrize("text", ["", "Patient/7", "Group/", "Group/a b", "Group/7/_history/1", "x" * 70])
def test_a_bad_group_reference_names_the_field(text: str) -> None:
    with pytest.raises(InputError) as raised:
        group_reference(text)
    assert raised.value.problems[0].path == "$.group"


def test_only_resources_of_this_project_are_kept_and_each_names_its_patient() -> None:
    assert keeps(observation("Patient/a", "1"))
    assert keeps(request("Patient/a", "1"))
    assert not keeps(observation("Patient/a", "1", system="urn:other"))
    assert not keeps({**observation("Patient/a", "1"), "id": None})
    assert not keeps({"resourceType": "Patient", "id": "a", "identifier": [{"system": DIARY_SYSTEM, "value": "1"}]})
    assert patient_of(observation("Patient/a", "1")) == "Patient/a"
    assert patient_of(request("Patient/a", "1"), "http://ehr.test/fhir") == "Patient/a"
    assert patient_of(request("Patient/a", "1")) is None, "an absolute reference to another server names no patient here"
    assert patient_of(observation("https://elsewhere.example/fhir/Patient/a", "1"), "http://ehr.test/fhir") is None
    assert patient_of({"subject": {"reference": "Group/7"}}) is None


# --- the export ----------------------------------------------------------------------------------------

def test_an_export_is_asked_waited_for_as_retry_after_says_and_read_back_per_member(tmp_path: Path) -> None:
    files = {"http://ehr.test/fhir/Binary/1": ndjson(observation("Patient/a", "a1"), observation("Patient/b", "b1"),
                                                     {"resourceType": "Patient", "id": "a"}),
             "http://ehr.test/fhir/Binary/2": ndjson(observation("Patient/a", "a2"))}
    ehr = ExportingEhr(files)
    export, sleeps = puller(ehr, tmp_path)
    exported = export.export("Group/7", since="2026-11-01T00:00:00Z")
    assert ehr.calls[0] == ("kick_off", ("Group/7/$export", {"_type": ",".join(bulk.EXPORT_TYPES),
                                                             "_since": "2026-11-01T00:00:00Z"}))
    assert sleeps == [3.0, 3.0]
    assert ("delete", STATUS) in ehr.calls
    # The files are private: a folder only this user may open, files only this user may read.
    assert stat.S_IMODE(exported.folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in exported.files} == {0o600}
    bundles = dict(bulk.bulk_bundles(exported, ["Patient/a", "Patient/b", "Patient/c"]))
    assert not exported.folder.exists(), "the export's files are deleted once read"
    assert [e["resource"]["id"] for e in bundles["Patient/a"]["entry"]] == ["o-a1", "o-a2"]
    assert bundles["Patient/a"]["total"] == 2
    assert bundles["Patient/a"]["meta"] == {"lastUpdated": "2026-11-30T10:00:00.000Z"}
    assert [e["resource"]["id"] for e in bundles["Patient/b"]["entry"]] == ["o-b1"]
    assert bundles["Patient/c"]["entry"] == [] and bundles["Patient/c"]["total"] == 0


def test_without_retry_after_the_waits_grow_and_are_bounded(tmp_path: Path) -> None:
    ehr = ExportingEhr({}, waits=12, retry=None)
    export, sleeps = puller(ehr, tmp_path, timeout=10_000)
    bulk.discard(export.export("Group/7"))
    assert sleeps[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(sleeps) == bulk.MAX_WAIT
    ehr = ExportingEhr({}, waits=2, retry=300.0)
    export, sleeps = puller(ehr, tmp_path, timeout=1000)
    bulk.discard(export.export("Group/7"))
    assert sleeps == [300.0, 300.0], "a long Retry-After is followed, within the time-out"
    ehr = ExportingEhr({}, waits=1, retry=0)
    export, sleeps = puller(ehr, tmp_path)
    bulk.discard(export.export("Group/7"))
    assert sleeps == [bulk.MIN_WAIT], "a Retry-After of 0 does not make a busy loop"


def test_a_busy_status_url_is_asked_again_and_an_error_status_ends_the_export(tmp_path: Path) -> None:
    ehr = ExportingEhr({}, waits=0, fail_status=EhrUnavailable("busy", status=429, retry_after=7.0))
    export, sleeps = puller(ehr, tmp_path)
    bulk.discard(export.export("Group/7"))
    assert sleeps == [7.0]
    transient = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "transient"}]}
    ehr = ExportingEhr({}, waits=0, fail_status=EhrUnavailable("try later", status=500, outcome=transient))
    export, sleeps = puller(ehr, tmp_path)
    bulk.discard(export.export("Group/7"))
    assert sleeps == [1.0], "a transient failure of the polling is not a failed export"
    ehr = ExportingEhr({}, waits=0, fail_status=EhrUnavailable("the export failed", status=500))
    export, _ = puller(ehr, tmp_path)
    with pytest.raises(EhrUnavailable, match="the export failed"):
        export.export("Group/7")
    assert ("delete", STATUS) in ehr.calls, "an export that failed is deleted on the EHR too"


def test_an_export_that_takes_too_long_is_given_up(tmp_path: Path) -> None:
    ehr = ExportingEhr({}, waits=1000, retry=30.0)
    export, sleeps = puller(ehr, tmp_path, timeout=100.0)
    with pytest.raises(EhrTimeout, match="FHIR_MIGRAINE_BULK_TIMEOUT"):
        export.export("Group/7")
    assert sum(sleeps) <= 100.0
    assert list(tmp_path.iterdir()) == [], "nothing left on disk"


def test_an_export_whose_job_was_taken_over_stops(tmp_path: Path) -> None:
    ehr = ExportingEhr({}, waits=5)
    export, _ = puller(ehr, tmp_path, alive=lambda: False)
    with pytest.raises(EhrUnavailable, match="taken over"):
        export.export("Group/7")
    ehr = ExportingEhr({"http://ehr.test/fhir/Binary/1": b"", "http://ehr.test/fhir/Binary/2": b""}, waits=0)
    answers = iter([True, False])
    export, _ = puller(ehr, tmp_path, alive=lambda: next(answers))
    with pytest.raises(EhrUnavailable, match="taken over"):
        export.export("Group/7")
    assert [c[1][0] for c in ehr.calls if c[0] == "download"] == ["http://ehr.test/fhir/Binary/1"], "asked between files"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("manifest", [{"output": "x"}, {"output": [{"type": "Observation"}]}, {"error": [1], "output": []}])
def test_a_manifest_without_its_files_is_refused(tmp_path: Path, manifest: Resource) -> None:
    export, _ = puller(ExportingEhr({}, waits=0, manifest=manifest), tmp_path)
    with pytest.raises(EhrUnavailable, match="manifest"):
        export.export("Group/7")


def test_files_without_an_access_token_are_fetched_without_credentials(tmp_path: Path) -> None:
    url = "https://files.example/1.ndjson"
    manifest = {"transactionTime": "2026-11-30T10:00:00Z", "requiresAccessToken": False,
                "output": [{"type": "Observation", "url": url}, {"type": "Patient", "url": "https://files.example/p"}]}
    ehr = ExportingEhr({url: ndjson(observation("Patient/a", "1"))}, waits=0, manifest=manifest)
    export, _ = puller(ehr, tmp_path)
    bulk.discard(export.export("Group/7"))
    assert [c for c in ehr.calls if c[0] == "download"] == [("download", (url, False))], "types not asked are not fetched"


def test_lines_that_are_not_resources_others_patients_and_the_ehrs_errors_are_reported(tmp_path: Path) -> None:
    files = {"http://ehr.test/fhir/Binary/1": ndjson(observation("Patient/a", "1"), b"{not json", b"[1]",
                                                     b"[" * 100_000, observation("Patient/z", "2")),
             "http://ehr.test/fhir/Binary/error": ndjson({"resourceType": "OperationOutcome", "issue": [
                 {"severity": "error", "code": "processing", "diagnostics": "MedicationStatement could not be read"}]})}
    export, _ = puller(ExportingEhr(files), tmp_path)
    bundles = dict(bulk.bulk_bundles(export.export("Group/7"), ["Patient/a"]))
    entries = bundles["Patient/a"]["entry"]
    assert [e["search"]["mode"] for e in entries] == ["match", "outcome"]
    warnings = [i["diagnostics"] for i in entries[-1]["resource"]["issue"]]
    assert warnings == ["3 line(s) of the EHR's export were not FHIR resources in JSON and were left out",
                        "1 exported resource(s) of patients outside the group were left out",
                        "the EHR's export listed 1 error(s) (OperationOutcome): some resources may be missing"]
    assert "could not be read" not in json.dumps(bundles), "the EHR's error text (it may name a patient) is not copied"
    assert bundles["Patient/a"]["total"] == 1


def test_a_failed_download_leaves_nothing_on_disk(tmp_path: Path) -> None:
    class Failing(ExportingEhr):
        def download(self, url: str, out: IO[bytes], *, authorized: bool, limit: int) -> int:
            out.write(b"partial")
            raise EhrRejected("too large")

    export, _ = puller(Failing({"http://ehr.test/fhir/Binary/1": b""}), tmp_path)
    with pytest.raises(EhrRejected):
        export.export("Group/7")
    assert list(tmp_path.iterdir()) == []


# --- the gateway: bulk where offered, else one pull per patient --------------------------------------

def gateway(ehr: ExportingEhr, tmp_path: Path, **pull: Any) -> EhrGateway:
    settings = Settings(database=str(tmp_path / "db.sqlite3"))
    settings = replace(settings, pull=replace(settings.pull, **pull))
    return EhrGateway(settings, ehr, sleep=lambda s: None)  # type: ignore[arg-type]


def test_the_gateway_pulls_a_group_by_bulk_export_where_the_ehr_lists_it(tmp_path: Path) -> None:
    ehr = ExportingEhr({"http://ehr.test/fhir/Binary/1": ndjson(observation("Patient/a", "1"))}, waits=0)
    found = gateway(ehr, tmp_path).group_pull("7")
    assert (found.group, found.method, found.members) == ("Group/7", "bulk", ["Patient/a", "Patient/b"])
    assert [(p, b["total"]) for p, b in found.bundles] == [("Patient/a", 1), ("Patient/b", 0)]


def test_without_export_in_the_statement_each_member_is_pulled_alone(tmp_path: Path) -> None:
    statement = {"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "resource": [
        {"type": "Group", "interaction": [{"code": "read"}]},
        *({"type": t, "interaction": [{"code": "search-type"}]} for t in bulk.EXPORT_TYPES)]}]}
    assert not read_capabilities(statement).exports_group()
    ehr = ExportingEhr({}, statement=statement, pages_of={"Observation": [observation("Patient/b", "1")]})
    found = gateway(ehr, tmp_path).group_pull("Group/7")
    assert found.method == "per-patient"
    assert [(p, b["total"]) for p, b in found.bundles] == [("Patient/a", 0), ("Patient/b", 1)]
    assert not [c for c in ehr.calls if c[0] == "kick_off"]


def test_a_refused_kick_off_falls_back_and_pull_bulk_never_does_not_ask(tmp_path: Path) -> None:
    ehr = ExportingEhr({}, kick_off_error=EhrUnsupported("the EHR answered 501", status=501))
    assert gateway(ehr, tmp_path).group_pull("Group/7").method == "per-patient"
    ehr = ExportingEhr({})
    assert gateway(ehr, tmp_path, bulk="never").group_pull("Group/7").method == "per-patient"
    assert not [c for c in ehr.calls if c[0] == "kick_off"]
    # An EHR that lists the export but answers 404 for a group it has: that is an error, not a fall back.
    ehr = ExportingEhr({}, kick_off_error=EhrRejected("not found", status=404))
    with pytest.raises(EhrRejected):
        gateway(ehr, tmp_path).group_pull("Group/7")


def test_a_group_without_members_and_a_bad_since_are_refused_before_any_export(tmp_path: Path) -> None:
    ehr = ExportingEhr({}, group={"resourceType": "Group", "id": "7", "type": "person", "actual": True})
    with pytest.raises(EhrRejected, match="no active Patient members"):
        gateway(ehr, tmp_path).group_pull("Group/7")
    with pytest.raises(InputError) as raised:
        gateway(ExportingEhr({}), tmp_path).group_pull("Group/7", since="yesterday")
    assert raised.value.problems[0].path == "$.since"


def test_each_member_is_unmapped_as_a_single_pull_is(tmp_path: Path) -> None:
    ehr = ExportingEhr({"http://ehr.test/fhir/Binary/1": ndjson(observation("Patient/a", "1"))}, waits=0)
    gate = gateway(ehr, tmp_path)
    lines = list(gate.unmapped(gate.group_pull("Group/7")))
    assert [line["patient"] for line in lines] == ["Patient/a", "Patient/b"]
    assert set(lines[0]) == {"patient", "orders", "diary", "reports", "invalid", "incomplete", "warnings", "resources"}
    assert lines[0]["resources"] == 1 and lines[1]["resources"] == 0


def test_resources_changed_before_since_are_left_out_as_a_single_pull_would(tmp_path: Path) -> None:
    old = {**observation("Patient/a", "old"), "meta": {"lastUpdated": "2026-10-01T00:00:00Z"}}
    new = {**observation("Patient/a", "new"), "meta": {"lastUpdated": "2026-11-02T00:00:00Z"}}
    undated = observation("Patient/a", "undated")
    export, _ = puller(ExportingEhr({"http://ehr.test/fhir/Binary/1": ndjson(old, new, undated)}, waits=0), tmp_path)
    exported = export.export("Group/7", since="2026-11-01T00:00:00Z")
    bundles = dict(bulk.bulk_bundles(exported, ["Patient/a"], since="2026-11-01T00:00:00Z"))
    assert [e["resource"]["id"] for e in bundles["Patient/a"]["entry"]] == ["o-new", "o-undated"]


def test_export_folders_a_stopped_process_left_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    stale, live = tmp_path / f"{bulk.FOLDER_PREFIX}old", tmp_path / f"{bulk.FOLDER_PREFIX}new"
    other = tmp_path / "someone-elses"
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "00000.ndjson").write_text("{}")
    os.utime(stale, (0, 0))
    os.utime(other, (0, 0))
    assert bulk.sweep(str(tmp_path)) == 1
    assert not stale.exists() and live.exists() and other.exists()


def test_a_group_pull_not_read_to_its_end_is_closed_and_leaves_nothing(tmp_path: Path) -> None:
    ehr = ExportingEhr({"http://ehr.test/fhir/Binary/1": ndjson(observation("Patient/a", "1"))}, waits=0)
    exports = tmp_path / "exports"
    exports.mkdir()
    found = gateway(ehr, tmp_path).group_pull("Group/7", folder=str(exports))
    assert len(list(exports.iterdir())) == 1
    found.close()
    assert list(exports.iterdir()) == []


@pytest.mark.parametrize("operation", [{"name": "export"}, {"name": "$export"},
                                       {"name": "bulk", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"}])
def test_the_group_export_is_found_by_name_or_by_its_definition(operation: Resource) -> None:
    statement = {"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "resource": [
        {"type": "Group", "interaction": [{"code": "read"}], "operation": [operation]}]}]}
    assert read_capabilities(statement).exports_group()


def test_the_export_is_sorted_into_one_private_file_per_member_and_read_one_member_at_a_time(tmp_path: Path) -> None:
    files = {"http://ehr.test/fhir/Binary/1": ndjson(observation("Patient/b", "b1"), observation("Patient/a", "a1")),
             "http://ehr.test/fhir/Binary/2": ndjson(observation("Patient/b", "b2"))}
    export, _ = puller(ExportingEhr(files), tmp_path)
    exported = export.export("Group/7")
    bundles = bulk.bulk_bundles(exported, ["Patient/a", "Patient/b", "Patient/c"])
    patient, first = next(bundles)
    assert (patient, [e["resource"]["id"] for e in first["entry"]]) == ("Patient/a", ["o-a1"])
    sorted_files = sorted(exported.folder.glob("member-*.ndjson"))
    assert [f.name for f in sorted_files] == ["member-0000000.ndjson", "member-0000001.ndjson"]
    assert {stat.S_IMODE(f.stat().st_mode) for f in sorted_files} == {0o600}
    assert [(p, [e["resource"]["id"] for e in b["entry"]]) for p, b in bundles] == [
        ("Patient/b", ["o-b1", "o-b2"]), ("Patient/c", [])]
    assert not exported.folder.exists()
