"""Cancelling an order and retracting a diary entry: the statuses (pure), the writer applying them
to an EHR in memory, and the service and CLI queueing them."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine.config import EhrSettings, OutboxSettings, Settings
from fhir_migraine.ehr.gateway import EhrGateway
from fhir_migraine.ehr.outbox import Outbox
from fhir_migraine.ehr.withdrawals import action_of, diary_retraction, members, order_cancellation, withdrawn
from fhir_migraine.ehr.worker import RetryPolicy, drain
from fhir_migraine.errors import EhrUnsupported, InputError, NotFound, NothingToWithdraw
from fhir_migraine.mapping.fhir import identifiers
from tests.conftest import EXAMPLES
from tests.memoryehr import MemoryEhr

ORDER = json.loads((EXAMPLES / "bundles" / "ed-migraine-rescue.bundle.json").read_text(encoding="utf-8"))
MONTH = json.loads((EXAMPLES / "diary" / "month.bundle.json").read_text(encoding="utf-8"))
SUBJECT = {"reference": "Patient/123"}
POLICY = RetryPolicy(base=0.0, cap=0.0, lease=30.0)


@pytest.mark.parametrize(("status", "administered", "becomes"), [
    ("draft", None, "cancelled"), ("draft", True, "cancelled"), ("active", False, "cancelled"),
    ("active", True, "stopped"), ("active", None, "stopped"), ("on-hold", None, "stopped"),
    ("completed", None, None), ("cancelled", None, None), ("stopped", True, None), ("entered-in-error", None, None),
])
def test_a_medication_request_is_cancelled_before_any_dose_and_stopped_after_or_when_unknown(
        status: str, administered: bool | None, becomes: str | None) -> None:
    found = withdrawn({"resourceType": "MedicationRequest", "status": status}, "cancel-order",
                      administered=administered, reason="patient left")
    assert (found or {}).get("status") == becomes
    if found is not None:
        assert found["statusReason"] == {"text": "patient left"}


@pytest.mark.parametrize(("resource", "action", "becomes"), [
    ({"resourceType": "RequestGroup", "status": "draft"}, "cancel-order", "revoked"),
    ({"resourceType": "RequestGroup", "status": "completed"}, "cancel-order", None),
    ({"resourceType": "Observation", "status": "final"}, "retract-diary", "entered-in-error"),
    ({"resourceType": "Observation", "status": "entered-in-error"}, "retract-diary", None),
])
def test_a_group_is_revoked_and_a_retracted_observation_entered_in_error(
        resource: dict[str, Any], action: Any, becomes: str | None) -> None:
    assert (withdrawn(resource, action) or {}).get("status") == becomes


def test_the_parts_say_what_they_withdraw_and_refuse_an_id_that_is_not_one() -> None:
    assert action_of(order_cancellation("ed-2026-0001", SUBJECT)) == "cancel-order"
    assert action_of(diary_retraction("p123-2026-10-18", SUBJECT)) == "retract-diary"
    assert action_of(ORDER) is None
    with pytest.raises(ValueError):
        order_cancellation("not an id!", SUBJECT)
    assert members({"resourceType": "Observation", "hasMember": [{"reference": "Observation/2"}]}) == ["Observation/2"]


def delivered(ehr: MemoryEhr, tmp_path: Path, bundle: dict[str, Any]) -> Outbox:
    outbox = Outbox(str(tmp_path / "o.sqlite3"))
    outbox.add("order", [copy.deepcopy(bundle)])
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    return outbox


def test_a_cancelled_order_reads_cancelled_and_revoked_and_a_resend_does_not_revive_it(tmp_path: Path) -> None:
    ehr = MemoryEhr(identifier_search=True)
    outbox = delivered(ehr, tmp_path, ORDER)
    item_id = outbox.add("withdrawal", [order_cancellation("ed-2026-0001", SUBJECT, "wrong patient weight")])
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    assert outbox.get(item_id).state == "sent"
    assert {r["status"] for r in ehr.of_type("MedicationRequest")} == {"cancelled"}  # drafts: never given
    assert {r["statusReason"]["text"] for r in ehr.of_type("MedicationRequest")} == {"wrong patient weight"}
    assert [r["status"] for r in ehr.of_type("RequestGroup")] == ["revoked"]
    versions = {k: r["meta"]["versionId"] for k, r in ehr.stored.items()}
    again = outbox.add("withdrawal", [order_cancellation("ed-2026-0001", SUBJECT)])
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    assert outbox.get(again).state == "sent"
    assert {k: r["meta"]["versionId"] for k, r in ehr.stored.items()} == versions, "nothing changed twice"
    resent = outbox.add("order", [copy.deepcopy(ORDER)])
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    item = outbox.get(resent)
    assert item.state == "conflict" and "which a re-send does not undo" in item.last_error["message"]
    assert {r["status"] for r in ehr.of_type("MedicationRequest")} == {"cancelled"}


def test_an_order_given_already_is_stopped(tmp_path: Path) -> None:
    active = copy.deepcopy(ORDER)
    for entry in active["entry"]:
        entry["resource"]["status"] = "active"
    ehr = MemoryEhr(identifier_search=True)
    outbox = delivered(ehr, tmp_path, active)
    given = ehr.of_type("MedicationRequest")[0]
    ehr.stored["MedicationAdministration/a1"] = {"resourceType": "MedicationAdministration", "id": "a1",
                                                 "request": {"reference": f"MedicationRequest/{given['id']}"},
                                                 "meta": {"versionId": "1"}}
    outbox.add("withdrawal", [order_cancellation("ed-2026-0001", SUBJECT)])
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    statuses = {r["id"]: r["status"] for r in ehr.of_type("MedicationRequest")}
    assert statuses.pop(given["id"]) == "stopped" and set(statuses.values()) == {"cancelled"}


def test_a_retracted_diary_day_and_its_members_are_entered_in_error(tmp_path: Path) -> None:
    ehr = MemoryEhr(conditional=True)
    outbox = delivered(ehr, tmp_path, MONTH)
    day = next(e["resource"] for e in MONTH["entry"] if e["resource"].get("hasMember"))
    entry_id = identifiers(day)[0]["value"]
    outbox.add("withdrawal", [diary_retraction(entry_id, day["subject"])])
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    retracted = [r for r in ehr.of_type("Observation") if r["status"] == "entered-in-error"]
    assert len(retracted) == 1 + len(day["hasMember"])
    assert any(r["identifier"] == day["identifier"] for r in retracted)


def _day_with_medications() -> tuple[str, dict[str, Any], set[str]]:
    """The entry id, day Observation and medication identifiers of the month's 24 Oct (three taken)."""
    day = next(e["resource"] for e in MONTH["entry"] if e["resource"].get("effectiveDateTime") == "2026-10-24")
    entry_id = identifiers(day)[0]["value"]
    taken = {identifiers(e["resource"])[0]["value"] for e in MONTH["entry"]
             if e["resource"]["resourceType"] == "MedicationStatement"
             and identifiers(e["resource"])[0]["value"].startswith(f"{entry_id}/")}
    return entry_id, day, taken


@pytest.mark.parametrize("ehr", [
    MemoryEhr(conditional=True),
    MemoryEhr(conditional=True, identifier_search=True),
    MemoryEhr(conditional=True, identifier_search=True, patient_search=False),
], ids=["by-patient", "by-patient-and-system", "by-identifier-one-index-after-the-other"])
def test_a_retracted_diary_day_takes_its_medication_statements_with_it(tmp_path: Path, ehr: MemoryEhr) -> None:
    entry_id, day, taken = _day_with_medications()
    assert len(taken) == 3
    outbox = delivered(ehr, tmp_path, MONTH)
    item = outbox.add("withdrawal", [diary_retraction(entry_id, day["subject"])])
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    assert outbox.get(item).state == "sent"
    statuses = {identifiers(r)[0]["value"]: r["status"] for r in ehr.of_type("MedicationStatement")}
    assert {k for k, v in statuses.items() if v == "entered-in-error"} == taken, "the entry's, and no other entry's"
    outcomes = [r for r in ehr.of_type("Observation") if identifiers(r)[0]["value"].startswith(f"{entry_id}/medication/")]
    assert len(outcomes) == 3 and {r["status"] for r in outcomes} == {"entered-in-error"}  # members of the day


def test_a_retraction_is_refused_before_any_change_when_medication_statements_cannot_be_updated(tmp_path: Path) -> None:
    entry_id, day, _ = _day_with_medications()
    ehr = MemoryEhr(conditional=True, updatable=("Observation", "QuestionnaireResponse"))
    outbox = delivered(ehr, tmp_path, MONTH)
    calls = len(ehr.calls)
    item = outbox.add("withdrawal", [diary_retraction(entry_id, day["subject"])])
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    error = outbox.get(item).last_error
    assert error["type"] == EhrUnsupported.__name__ and "update MedicationStatement" in error["message"]
    assert not [c for c in ehr.calls[calls:] if c.startswith("PUT")], "nothing changed"


def test_withdrawing_what_the_ehr_does_not_hold_or_cannot_update_is_dead(tmp_path: Path) -> None:
    ehr = MemoryEhr(identifier_search=True)
    outbox = Outbox(str(tmp_path / "o.sqlite3"))
    missing = outbox.add("withdrawal", [order_cancellation("ed-2026-0404", SUBJECT)])
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    assert outbox.get(missing).state == "dead" and outbox.get(missing).last_error["type"] == NothingToWithdraw.__name__
    frozen = MemoryEhr(identifier_search=True, updatable=("Observation",))
    refused = outbox.add("withdrawal", [order_cancellation("ed-2026-0001", SUBJECT)])
    drain(outbox, frozen, POLICY, writer=frozen.writer())
    error = outbox.get(refused).last_error
    assert error["type"] == EhrUnsupported.__name__ and "update MedicationRequest, update RequestGroup" in error["message"]
    assert frozen.calls == []


@pytest.fixture
def gateway(tmp_path: Path) -> EhrGateway:
    settings = Settings(database=str(tmp_path / "gw.sqlite3"), ehr=EhrSettings(url="http://ehr.test/fhir"),
                        outbox=OutboxSettings(retry_base=0.01, retry_cap=0.01))
    ehr = MemoryEhr(identifier_search=True)
    return EhrGateway(settings, ehr)  # type: ignore[arg-type]


def test_the_gateway_finds_the_patient_of_an_order_it_queued_or_asks_for_it(gateway: EhrGateway) -> None:
    with pytest.raises(NotFound, match="name its patient"):
        gateway.cancel_order("ed-2026-0001")
    gateway.queue(copy.deepcopy(ORDER), kind="order")
    item = gateway.outbox.get(gateway.cancel_order("ed-2026-0001"))
    assert item.kind == "withdrawal" and item.parts[0]["entry"][0]["resource"]["subject"] == {"reference": "Patient/123"}
    given = gateway.outbox.get(gateway.cancel_order("ed-2026-0002", patient="identifier=urn:mrn|42"))
    assert given.parts[0]["entry"][0]["resource"]["subject"] == {"identifier": {"system": "urn:mrn", "value": "42"}}
    with pytest.raises(InputError) as bad:
        gateway.cancel_order("no good!", patient="Patient/1")
    assert bad.value.problems[0].path == "$.order_id"


def test_the_gateway_cancels_what_it_pushed(gateway: EhrGateway) -> None:
    assert gateway.push_now(copy.deepcopy(ORDER), wait=5, sleep=lambda s: None).state == "sent"
    item = gateway.send_now(gateway.cancel_order("ed-2026-0001"), wait=5, sleep=lambda s: None)
    assert item.state == "sent"
    ehr: MemoryEhr = gateway.ehr  # type: ignore[assignment]
    assert [r["status"] for r in ehr.of_type("RequestGroup")] == ["revoked"]


def test_cancel_on_the_command_line_without_a_known_patient_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_migraine.cli import main

    monkeypatch.setenv("FHIR_MIGRAINE_DB", str(tmp_path / "cli.sqlite3"))
    err = io.StringIO()
    code = main(["cancel", "ed-2026-0001", "--ehr", "http://127.0.0.1:9/fhir"], out=io.StringIO(), err=err)
    assert code == 1 and "name its patient" in err.getvalue()
