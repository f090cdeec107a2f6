"""The worker with the writer, against an EHR in memory (tests/memoryehr.py): progress kept in the
outbox across a failure and a crash, a part too large split, an amendment refused ends ``conflict``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from fhir_migraine.ehr.contents import business_identifier
from fhir_migraine.ehr.outbox import Outbox
from fhir_migraine.ehr.worker import RetryPolicy, drain, send
from fhir_migraine.errors import EhrTooLarge, EhrUnavailable
from tests.conftest import EXAMPLES
from tests.memoryehr import MemoryEhr

ORDER = json.loads((EXAMPLES / "bundles" / "ed-migraine-rescue.bundle.json").read_text(encoding="utf-8"))
MONTH = json.loads((EXAMPLES / "diary" / "month.bundle.json").read_text(encoding="utf-8"))
POLICY = RetryPolicy(base=0.0, cap=0.0, lease=30.0)


def each_once(ehr: MemoryEhr, bundle: dict) -> None:
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert ehr.count(resource["resourceType"], business_identifier(resource)) == 1
    assert len(ehr.stored) == len(bundle["entry"])


def test_a_failure_mid_sequence_resumes_from_the_recorded_progress(tmp_path: Path) -> None:
    outbox = Outbox(str(tmp_path / "o.sqlite3"))
    item_id = outbox.add("order", [copy.deepcopy(ORDER)])
    ehr = MemoryEhr(patient_search=False, fail={3: EhrUnavailable("gone")})  # no lookup: progress alone prevents duplicates
    writer = ehr.writer()
    item = outbox.claim(POLICY.lease)
    assert send(outbox, ehr, item, POLICY, writer) == "pending"
    assert len(outbox.get(item_id).progress) == 2
    # A new writer (as after a restart) with nothing recorded but the outbox's progress.
    drain(outbox, ehr, POLICY, writer=MemoryEhr.writer(ehr))
    done = outbox.get(item_id)
    assert done.state == "sent" and done.progress == {}
    each_once(ehr, ORDER)
    answer = done.responses[0]
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * len(ORDER["entry"])


def test_a_part_refused_for_its_size_is_split_and_sent(tmp_path: Path) -> None:
    outbox = Outbox(str(tmp_path / "o.sqlite3"))
    item_id = outbox.add("diary", [copy.deepcopy(MONTH)])
    ehr = MemoryEhr(bundles=("transaction",), conditional=True, fail={1: EhrTooLarge("too many", status=413)})
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    item = outbox.get(item_id)
    assert item.state == "sent" and item.part_count == 3  # halves of the month, its days kept whole
    assert [c for c in ehr.calls if c.startswith("TRANSACTION")] == [
        f"TRANSACTION {len(MONTH['entry'])}", *[f"TRANSACTION {len(p['entry'])}" for p in item.parts]]
    each_once(ehr, MONTH)


def test_a_part_of_one_order_refused_for_its_size_is_dead_saying_it_cannot_be_split(tmp_path: Path) -> None:
    outbox = Outbox(str(tmp_path / "o.sqlite3"))
    item_id = outbox.add("order", [copy.deepcopy(ORDER)])  # its entries all refer to one group
    ehr = MemoryEhr(bundles=("transaction",), conditional=True, fail={1: EhrTooLarge("too many", status=413)})
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    item = outbox.get(item_id)
    assert item.state == "dead" and "cannot be split" in item.last_error["message"]


def test_an_amendment_the_ehr_will_not_take_ends_conflict_naming_the_changes(tmp_path: Path) -> None:
    outbox = Outbox(str(tmp_path / "o.sqlite3"))
    ehr = MemoryEhr(identifier_search=True, updatable=())
    outbox.add("order", [copy.deepcopy(ORDER)])
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    amended = copy.deepcopy(ORDER)
    amended["entry"][2]["resource"]["dosageInstruction"][0]["text"] = "changed"
    item_id = outbox.add("order", [amended])
    drain(outbox, ehr, POLICY, writer=ehr.writer())
    item = outbox.get(item_id)
    assert item.state == "conflict" and item.last_error["changed"] == ["dosageInstruction"]
    assert item.last_error["type"] == "AmendmentRefused"
    assert outbox.counts().get("conflict") == 1
    outbox.revive(item_id)
    assert outbox.get(item_id).state == "pending"
