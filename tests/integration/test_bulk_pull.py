"""A group of 50 patients pulled from the HAPI test EHR by FHIR Bulk Data (POST /bulk-pulls, run by
the service's group puller) gives every patient the same orders and diary entries as 50 single
pulls, and so does the per-patient fall back; both are what was pushed."""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace
from typing import Any

import pytest

from fhir_migraine.cli import main
from fhir_migraine.config import EhrSettings, OutboxSettings, Settings
from fhir_migraine.ehr.gateway import EhrGateway
from tests.integration.helpers import example_diary, example_orders, running_service, sort_entries, wait_until_settled

pytestmark = pytest.mark.ehr
MEMBERS = 50
KEYS = ("orders", "diary", "reports", "invalid", "incomplete", "resources")


def wait_for_pull(service: Any, location: str, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.time() + timeout
    while True:
        found: dict[str, Any] = service.get(location).get_json()
        if found["state"] in ("done", "failed"):
            return found
        if time.time() > deadline:
            raise AssertionError(f"the bulk pull is still {found['state']} after {timeout} s: {found}")
        time.sleep(0.5)


def comparable(found: dict[str, Any]) -> dict[str, Any]:
    """A member's result with its lists in a stable order (the EHR returns resources in any order)."""
    return {"orders": sort_entries(found["orders"]), "diary": sort_entries(found["diary"]),
            "reports": found["reports"], "invalid": found["invalid"], "incomplete": found["incomplete"],
            "resources": found["resources"]}


def test_a_group_of_50_by_bulk_export_is_the_same_as_50_single_pulls(ehr_url: str, ehr, settings: Settings,
                                                                        run_id: str, tmp_path, monkeypatch) -> None:
    patients = [f"Patient/bulk-{run_id}-{i}" for i in range(MEMBERS)]
    diaries = {p: example_diary(f"{run_id}-{i}", p, "attacks") for i, p in enumerate(patients)}
    orders = {p: example_orders(f"{run_id}-{i}", p)[:1] for i, p in enumerate(patients) if i % 5 == 0}
    ehr_settings = EhrSettings(url=ehr_url, transaction_size=40)
    with running_service(settings, ehr_settings, OutboxSettings(retry_base=0.1)) as service:
        ids = [service.post("/diary", json=diaries[p]).get_json()["outbox_id"] for p in patients]
        ids += [service.post("/orders", json=o).get_json()["outbox_id"] for found in orders.values() for o in found]
        settled = wait_until_settled(service, ids, timeout=600)
        assert {s["state"] for s in settled.values()} == {"sent"}, settled
        group = f"bulk-{run_id}"
        ehr.put({"resourceType": "Group", "id": group, "type": "person", "actual": True,
                 "member": [{"entity": {"reference": p}} for p in patients]})

        answer = service.post("/bulk-pulls", json={"group": f"Group/{group}"})
        assert answer.status_code == 202
        summary = wait_for_pull(service, answer.headers["Location"])
        assert (summary["state"], summary["method"], summary["members"], summary["patients_read"]) == (
            "done", "bulk", MEMBERS, MEMBERS), summary
        lines = service.get(summary["patients"]).get_data(as_text=True).splitlines()
        by_bulk = {m["patient"]: comparable(m) for m in map(json.loads, lines)}

        single: dict[str, dict[str, Any]] = {}
        for patient in patients:
            diary = service.get(f"/patients/{patient}/diary").get_json()
            pulled_orders = service.get(f"/patients/{patient}/orders").get_json()
            single[patient] = comparable({**diary, "orders": pulled_orders["orders"], "reports": []})

    assert list(by_bulk) == patients, "one line per member, in the group's order"
    assert sum(m["resources"] for m in by_bulk.values()) == summary["resources"] > 0
    for patient in patients:
        assert {k: by_bulk[patient][k] for k in KEYS} == single[patient], patient
        # ...and both are what was pushed.
        assert by_bulk[patient]["diary"] == sort_entries(diaries[patient])
        assert by_bulk[patient]["orders"] == sort_entries(orders.get(patient, []))

    # The fall back (an EHR without $export) gives the same members too.
    never = replace(settings, ehr=ehr_settings, pull=replace(settings.pull, bulk="never"))
    gateway = EhrGateway.from_settings(never)
    found = gateway.group_pull(f"Group/{group}")
    assert found.method == "per-patient"
    by_patient = {m["patient"]: comparable(m) for m in gateway.unmapped(found, find_protocol=None)}
    for patient in patients:
        assert by_patient[patient]["diary"] == by_bulk[patient]["diary"], patient
        assert by_patient[patient]["resources"] == by_bulk[patient]["resources"], patient

    # The CLI's group pull gives each member's diary as the service's does, one JSON line each.
    monkeypatch.setenv("FHIR_MIGRAINE_DB", str(tmp_path / "cli.sqlite3"))
    out, err = io.StringIO(), io.StringIO()
    assert main(["pull", "--ehr", ehr_url, "--group", f"Group/{group}", "--unmap"], out=out, err=err) == 0
    by_cli = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [m["patient"] for m in by_cli] == patients
    assert all(sort_entries(m["diary"]) == by_bulk[m["patient"]]["diary"] for m in by_cli)
