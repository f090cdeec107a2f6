"""The write strategies against an EHR in memory (tests/memoryehr.py): transaction, batch and one
request per resource; nothing created twice (conditional create, search by identifier, by patient,
or the ids this service recorded); references rewritten to the server's ids; progress kept across
a failure; amendments updated or refused; the strategy stepping down."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine.ehr.capabilities import read_capabilities
from fhir_migraine.ehr.contents import business_identifier
from fhir_migraine.ehr.known import KnownResources
from fhir_migraine.errors import AmendmentRefused, EhrConflict, EhrRejected, EhrUnavailable, EhrUnsupported
from fhir_migraine.mapping.fhir import identifiers
from tests.conftest import EXAMPLES
from tests.memoryehr import MemoryEhr

ORDER = json.loads((EXAMPLES / "bundles" / "ed-migraine-rescue.bundle.json").read_text(encoding="utf-8"))
MONTH = json.loads((EXAMPLES / "diary" / "month.bundle.json").read_text(encoding="utf-8"))

# Each way an EHR lets a re-send be recognised: conditional create, search by identifier, search by
# patient (filtered here), or only the ids this service recorded.
LOOKUPS = {
    "conditional": {"conditional": True},
    "identifier-search": {"identifier_search": True},
    "patient-search": {},
    "recorded-ids": {"patient_search": False},
}


def each_once(ehr: MemoryEhr, bundle: dict[str, Any]) -> None:
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert ehr.count(resource["resourceType"], business_identifier(resource)) == 1, business_identifier(resource)
    assert len(ehr.stored) == len(bundle["entry"])


def group_targets(ehr: MemoryEhr) -> list[str]:
    [group] = ehr.of_type("RequestGroup")
    return [a["resource"]["reference"] for a in group["action"]]


@pytest.mark.parametrize("lookup", LOOKUPS, ids=list(LOOKUPS))
@pytest.mark.parametrize("bundles", [(), ("batch",), ("transaction",)], ids=["per-resource", "batch", "transaction"])
def test_sent_twice_every_resource_is_stored_once_with_literal_references(
        tmp_path: Path, lookup: str, bundles: tuple[str, ...]) -> None:
    ehr = MemoryEhr(bundles=bundles, **LOOKUPS[lookup])
    known = KnownResources(str(tmp_path / "known.sqlite3"), ehr.base_url)
    for _ in range(2):
        answer = ehr.writer(known).write(copy.deepcopy(ORDER))
        assert answer["type"] == "transaction-response" and len(answer["entry"]) == len(ORDER["entry"])
        assert all(e["response"]["location"].split("/")[0] == o["resource"]["resourceType"]
                   for e, o in zip(answer["entry"], ORDER["entry"], strict=True))
    each_once(ehr, ORDER)
    requests = {f"MedicationRequest/{r['id']}" for r in ehr.of_type("MedicationRequest")}
    assert set(group_targets(ehr)) == requests, "the RequestGroup names the MedicationRequests by their server ids"


def test_per_resource_writes_the_requests_before_their_group_and_the_members_before_their_day() -> None:
    ehr = MemoryEhr()
    ehr.writer().write(copy.deepcopy(ORDER))
    posts = [c for c in ehr.calls if c.startswith("POST")]
    assert posts == ["POST MedicationRequest"] * 5 + ["POST RequestGroup"]
    day = next(e for e in MONTH["entry"] if e["resource"].get("hasMember"))
    members = [m["reference"] for m in day["resource"]["hasMember"]]
    part = {**MONTH, "entry": [e for e in MONTH["entry"] if e["fullUrl"] in members] + [day]}
    part["entry"] = [part["entry"][-1], *part["entry"][:-1]]  # the day first: written last all the same
    ehr = MemoryEhr()
    ehr.writer().write(part)
    stored_day = next(r for r in ehr.of_type("Observation") if r.get("hasMember"))
    assert all(ehr.stored.get(m["reference"]) is not None for m in stored_day["hasMember"])
    assert list(ehr.stored)[-1] == f"Observation/{stored_day['id']}"


def test_a_batch_is_sent_one_layer_at_a_time() -> None:
    ehr = MemoryEhr(bundles=("batch",))
    ehr.writer().write(copy.deepcopy(ORDER))
    assert [c for c in ehr.calls if c.startswith("BATCH")] == ["BATCH 5", "BATCH 1"]


def test_a_minimal_answer_gives_the_ids_all_the_same() -> None:
    ehr = MemoryEhr(minimal=True)
    answer = ehr.writer().write(copy.deepcopy(ORDER))
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * len(ORDER["entry"])
    assert len(set(group_targets(ehr))) == 5 and all(t in ehr.stored for t in group_targets(ehr))


def test_progress_recorded_before_a_failure_is_not_written_again() -> None:
    # The two searches (requests, group), two creates, then the failure.
    ehr = MemoryEhr(fail={5: EhrUnavailable("the EHR went away")})
    recorded: dict[str, dict[str, Any]] = {}
    with pytest.raises(EhrUnavailable):
        ehr.writer().write(copy.deepcopy(ORDER), record=recorded.update)
    assert len(recorded) == 2, "two MedicationRequests were written before the failure"
    ehr.writer().write(copy.deepcopy(ORDER), done=recorded, record=recorded.update)
    each_once(ehr, ORDER)
    assert ehr.calls.count("POST MedicationRequest") == 5 + 1  # the failed call, and each resource once


def test_an_amended_resource_is_updated_with_if_match_and_an_unchanged_one_is_not(tmp_path: Path) -> None:
    ehr = MemoryEhr(identifier_search=True)
    known = KnownResources(str(tmp_path / "known.sqlite3"), ehr.base_url)
    ehr.writer(known).write(copy.deepcopy(ORDER))
    amended = copy.deepcopy(ORDER)
    amended["entry"][3]["resource"]["note"] = [{"text": "Give over 15 minutes"}]
    answer = ehr.writer(known).write(amended)
    puts = [c for c in ehr.calls if c.startswith("PUT")]
    target = answer["entry"][3]["response"]["location"]
    assert puts == [f"PUT {target.rsplit('/', 2)[0]}"]
    assert target.endswith("/_history/2") and ehr.stored[target.rsplit("/", 2)[0]]["note"][0]["text"] == "Give over 15 minutes"
    ehr.writer(known).write(copy.deepcopy(amended))
    assert len([c for c in ehr.calls if c.startswith("PUT")]) == 1, "the same content again is not an update"
    each_once(ehr, ORDER)


# Without a body, each resource found is read to be compared; with one, the answer is compared.
@pytest.mark.parametrize(("minimal", "asked"), [(False, ["PUT"]), (True, ["GET", "PUT"] + ["GET"] * 5)],
                         ids=["answered-with-the-resource", "answered-without-a-body"])
def test_an_amendment_is_compared_with_what_the_ehr_holds_when_nothing_was_recorded(
        minimal: bool, asked: list[str]) -> None:
    ehr = MemoryEhr(conditional=True, minimal=minimal)
    ehr.writer().write(copy.deepcopy(ORDER))
    amended = copy.deepcopy(ORDER)
    amended["entry"][0]["resource"]["note"] = [{"text": "Warm the bag"}]
    ehr.writer().write(amended)
    assert [c.split(" ")[0] for c in ehr.calls if c.startswith(("PUT", "GET"))] == asked
    assert [r.get("note") for r in ehr.of_type("MedicationRequest")].count([{"text": "Warm the bag"}]) == 1


def test_an_ehr_that_will_not_update_leaves_the_amendment_refused_naming_what_changed(tmp_path: Path) -> None:
    ehr = MemoryEhr(identifier_search=True, updatable=())
    ehr.writer().write(copy.deepcopy(ORDER))
    amended = copy.deepcopy(ORDER)
    amended["entry"][1]["resource"]["note"] = [{"text": "changed"}]
    with pytest.raises(AmendmentRefused) as refused:
        ehr.writer().write(amended)
    assert refused.value.changed == ["note"] and "MedicationRequest/" in refused.value.message
    assert not any(c.startswith("PUT") for c in ehr.calls), "an update it does not advertise is not tried"


def test_an_update_refused_by_the_ehr_is_refused_and_a_lost_race_is_retryable(tmp_path: Path) -> None:
    ehr = MemoryEhr(identifier_search=True)
    ehr.writer().write(copy.deepcopy(ORDER))
    amended = copy.deepcopy(ORDER)
    amended["entry"][1]["resource"]["note"] = [{"text": "changed"}]
    # Six searches (one per entry, all before anything is written), then the PUT of the changed one.
    ehr.fail[len(ehr.calls) + 7] = EhrUnsupported("updates are switched off", status=405)
    with pytest.raises(AmendmentRefused, match="refuses to update"):
        ehr.writer().write(copy.deepcopy(amended))
    ehr.fail[len(ehr.calls) + 7] = EhrRejected("version conflict", status=412)
    with pytest.raises(EhrConflict) as conflict:
        ehr.writer().write(copy.deepcopy(amended))
    assert conflict.value.retryable


def test_several_resources_with_the_identifier_of_one_are_not_guessed_between() -> None:
    ehr = MemoryEhr(identifier_search=True, bundles=())
    ehr.writer().write(copy.deepcopy(ORDER))
    first = ehr.of_type("MedicationRequest")[0]
    ehr.stored["MedicationRequest/99"] = {**copy.deepcopy(first), "id": "99"}
    with pytest.raises(EhrRejected, match="2 MedicationRequest resources"):
        ehr.writer().write(copy.deepcopy(ORDER))


def test_what_the_ehr_cannot_create_is_refused_before_any_request() -> None:
    ehr = MemoryEhr(creatable=("Observation",))
    with pytest.raises(EhrUnsupported, match="create MedicationRequest, create RequestGroup"):
        ehr.writer().write(copy.deepcopy(ORDER))
    assert ehr.calls == []


def test_a_bundle_kind_the_ehr_refuses_steps_down_for_this_part_and_the_next() -> None:
    ehr = MemoryEhr(bundles=("batch",), conditional=True)
    advertised = ehr.metadata()
    advertised["rest"][0]["interaction"] = [{"code": "transaction"}, {"code": "batch"}]  # says more than it does
    writer = ehr.writer()
    writer.capabilities = lambda: read_capabilities(advertised)
    writer.write(copy.deepcopy(ORDER))
    writer.write(copy.deepcopy(ORDER))
    kinds = [c.split(" ")[0] for c in ehr.calls if c.split(" ")[0] in ("TRANSACTION", "BATCH")]
    assert kinds == ["TRANSACTION", "BATCH", "BATCH", "BATCH", "BATCH"]
    each_once(ehr, ORDER)


def test_a_configured_strategy_does_not_step_down() -> None:
    ehr = MemoryEhr(bundles=("batch",))
    with pytest.raises(EhrUnsupported):
        ehr.writer(strategy="transaction").write(copy.deepcopy(ORDER))


def test_the_diary_month_per_resource_twice_is_stored_once(tmp_path: Path) -> None:
    ehr = MemoryEhr(minimal=True)
    known = KnownResources(str(tmp_path / "known.sqlite3"), ehr.base_url)
    for _ in range(2):
        ehr.writer(known).write(copy.deepcopy(MONTH))
    each_once(ehr, MONTH)


DHE = json.loads((EXAMPLES / "bundles" / "dhe-repeat.bundle.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("lookup", LOOKUPS, ids=list(LOOKUPS))
@pytest.mark.parametrize("bundles", [(), ("batch",)], ids=["per-resource", "batch"])
def test_resources_that_refer_to_each_other_are_created_then_completed_by_an_update(
        tmp_path: Path, lookup: str, bundles: tuple[str, ...]) -> None:
    ehr = MemoryEhr(bundles=bundles, **LOOKUPS[lookup])
    known = KnownResources(str(tmp_path / "known.sqlite3"), ehr.base_url)
    for _ in range(2):
        ehr.writer(known).write(copy.deepcopy(DHE))
    each_once(ehr, DHE)
    [issue] = ehr.of_type("DetectedIssue")
    flagged = [r for r in ehr.of_type("MedicationRequest") if r.get("detectedIssue")]
    assert [r["detectedIssue"] for r in flagged] == [[{"reference": f"DetectedIssue/{issue['id']}"}]]
    assert [i["reference"] for i in issue["implicated"]] == [f"MedicationRequest/{flagged[0]['id']}"]
    assert "urn:uuid" not in json.dumps(list(ehr.stored.values()))
    assert len([c for c in ehr.calls if c.startswith("PUT")]) == 1, "one update completes the cycle, once"


def test_a_cycle_the_ehr_cannot_complete_by_an_update_is_refused_before_anything_is_written() -> None:
    ehr = MemoryEhr(updatable=())
    with pytest.raises(EhrUnsupported, match="no update of DetectedIssue, MedicationRequest"):
        ehr.writer().write(copy.deepcopy(DHE))
    assert ehr.calls == []


def test_a_request_throttled_with_a_short_retry_after_is_asked_again_in_place() -> None:
    waits: list[float] = []
    ehr = MemoryEhr(fail={3: EhrUnavailable("busy", status=429, retry_after=1.0),
                          5: EhrUnavailable("busy", status=503, retry_after=2.0)})
    writer = ehr.writer()
    writer.calls.sleep = waits.append
    writer.write(copy.deepcopy(ORDER))
    assert waits == [1.0, 2.0]
    each_once(ehr, ORDER)


@pytest.mark.parametrize("error", [EhrUnavailable("busy", status=429, retry_after=60.0),
                                   EhrUnavailable("busy", status=429), EhrUnavailable("down", status=500)],
                         ids=["long-wait", "no-retry-after", "500"])
def test_a_long_or_unknown_wait_is_left_to_the_outbox(error: EhrUnavailable) -> None:
    ehr = MemoryEhr(fail={3: error})
    writer = ehr.writer()
    writer.calls.sleep = lambda s: pytest.fail("no wait in place")
    with pytest.raises(EhrUnavailable):
        writer.write(copy.deepcopy(ORDER))


@pytest.mark.parametrize("bundles", [(), ("batch",)], ids=["per-resource", "batch"])
def test_a_medication_statement_and_its_outcome_refer_to_the_ehrs_ids(bundles: tuple[str, ...]) -> None:
    ehr = MemoryEhr(bundles=bundles)
    ehr.writer().write(copy.deepcopy(MONTH))
    stored = {f"{r['resourceType']}/{r['id']}": r for r in ehr.stored.values()}
    statements = ehr.of_type("MedicationStatement")
    assert statements and "urn:uuid" not in json.dumps(list(ehr.stored.values()))
    for statement in statements:
        for reason in statement.get("reasonReference", []):
            assert identifiers(stored[reason["reference"]])[0]["value"].endswith("/attack")
    outcomes = [r for r in ehr.of_type("Observation") if "partOf" in r]
    assert len(outcomes) == 7
    for outcome in outcomes:
        statement = stored[outcome["partOf"][0]["reference"]]
        assert identifiers(outcome)[0]["value"] == identifiers(statement)[0]["value"] + "/outcome"
