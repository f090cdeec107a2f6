"""Push every example order and diary through the service to a real HAPI server, pull them
back, and get exactly the inputs; pushing the same input twice creates nothing new."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_migraine import operations
from fhir_migraine.config import EhrSettings, OutboxSettings, PullSettings, Settings
from fhir_migraine.ehr.gateway import EhrGateway
from fhir_migraine.identifiers import ATTACK_SYSTEM, DIARY_SYSTEM, ORDER_STEP_SYSTEM, diary_value, step_value
from fhir_migraine.inputs.diary_files import Located
from fhir_migraine.mapping.fhir import identifiers
from tests.integration.conftest import count_by_identifier
from tests.integration.helpers import example_diary, example_orders, running_service, sort_entries, wait_until_settled

pytestmark = pytest.mark.ehr


@pytest.fixture
def service(ehr_url: str, settings, tmp_path: Path):
    with running_service(settings, EhrSettings(url=ehr_url, transaction_size=40), OutboxSettings(retry_base=0.1)) as client:
        yield client


def test_orders_and_diary_reach_the_ehr_and_come_back_exactly(service, ehr, run_id: str) -> None:
    patient = f"Patient/it-{run_id}"
    orders, diary = example_orders(run_id, patient), example_diary(run_id, patient)
    ids = [service.post("/orders", json=o).get_json()["outbox_id"] for o in orders]
    answer = service.post("/diary", json=diary)
    assert answer.status_code == 202
    assert answer.headers["Location"] == f"/outbox/{answer.get_json()['outbox_id']}"
    ids.append(answer.get_json()["outbox_id"])

    settled = wait_until_settled(service, ids)
    assert [s["state"] for s in settled.values()] == ["sent"] * len(ids), settled
    assert settled[ids[-1]]["parts"] > 1, "the diary was split into transactions of at most 40 entries"

    pulled_diary = service.get(f"/patients/{patient}/diary").get_json()["diary"]
    assert sort_entries(pulled_diary) == sort_entries(diary)
    pulled_orders = service.get(f"/patients/{patient}/orders").get_json()["orders"]
    assert sort_entries(pulled_orders) == sort_entries(orders)

    # The summary of the diary as HAPI holds it has the figures of the diary as written.
    pulled_summary = service.get(f"/patients/{patient}/summary").get_json()
    local = operations.diary_summary(operations.load_diary(Located(e) for e in diary))
    assert pulled_summary["left_out"] == {"invalid": [], "incomplete": []}
    assert {k: pulled_summary[k] for k in local if k != "patient"} == {k: v for k, v in local.items() if k != "patient"}
    assert pulled_summary["headache_days"] == 8


def test_entries_with_several_attacks_and_a_continued_attack_come_back_exactly(service, ehr, run_id: str) -> None:
    patient = f"Patient/it-{run_id}"
    diary = example_diary(run_id, patient, "attacks")
    answer = service.post("/diary", json=diary)
    assert answer.status_code == 202
    settled = wait_until_settled(service, [answer.get_json()["outbox_id"]])
    assert [s["state"] for s in settled.values()] == ["sent"], settled

    assert sort_entries(service.get(f"/patients/{patient}/diary").get_json()["diary"]) == sort_entries(diary)
    # The first record of attack a1 and its continuation share the attack identifier in the EHR.
    value = f"it-{run_id}/a1"
    assert count_by_identifier(ehr, "Observation", ATTACK_SYSTEM, value) == 2
    pulled_summary = service.get(f"/patients/{patient}/summary").get_json()
    assert (pulled_summary["headache_days"], pulled_summary["attacks"]) == (6, 4)


def test_pushing_the_same_input_twice_creates_nothing_new(service, ehr, run_id: str) -> None:
    patient = f"Patient/it-{run_id}"
    order = next(o for o in example_orders(run_id, patient) if o["protocol"] == "ed-migraine-rescue")
    entry = example_diary(run_id, patient)[2]
    first = [service.post("/orders", json=order).get_json()["outbox_id"], service.post("/diary", json=entry).get_json()["outbox_id"]]
    wait_until_settled(service, first)
    again = [service.post("/orders", json=order).get_json()["outbox_id"], service.post("/diary", json=entry).get_json()["outbox_id"]]
    settled = wait_until_settled(service, again)

    statuses = [e["response"]["status"] for s in settled.values() for r in s["responses"] for e in r["entry"]]
    assert statuses and all(s.startswith("200") for s in statuses), statuses
    for step in ("fluids", "antiemetic"):
        assert count_by_identifier(ehr, "MedicationRequest", ORDER_STEP_SYSTEM, step_value(order["order_id"], step)) == 1
    assert count_by_identifier(ehr, "Observation", DIARY_SYSTEM, entry["entry_id"]) == 1
    assert count_by_identifier(ehr, "Observation", DIARY_SYSTEM, diary_value(entry["entry_id"], "attack")) == 1
    assert count_by_identifier(ehr, "MedicationStatement", DIARY_SYSTEM, diary_value(entry["entry_id"], "medication", 0)) == 1
    assert count_by_identifier(ehr, "Observation", DIARY_SYSTEM, diary_value(entry["entry_id"], "medication-outcome", 0)) == 1


def test_pull_follows_every_next_link(service, ehr, run_id: str, monkeypatch) -> None:
    from fhir_migraine.ehr import pull as pull_module

    patient = f"Patient/it-{run_id}"
    diary = example_diary(run_id, patient)
    wait_until_settled(service, [service.post("/diary", json=diary).get_json()["outbox_id"]])
    monkeypatch.setattr(pull_module, "PAGE_SIZE", 7)
    bundle = pull_module.pull(ehr, patient)
    assert bundle["total"] == len(operations.map_diary([Located(e) for e in diary])["entry"]) == 67
    assert sort_entries(service.get(f"/patients/{patient}/diary").get_json()["diary"]) == sort_entries(diary)


def test_pull_since_and_the_cursor_fetch_only_what_changed(service, ehr, run_id: str, tmp_path: Path) -> None:
    patient = f"Patient/it-{run_id}"
    diary = example_diary(run_id, patient)
    # No overlap: the second pull then asks from the instant the first began by the EHR's clock.
    gateway = EhrGateway(Settings(database=str(tmp_path / "cursors.sqlite3"), pull=PullSettings(cursor_overlap=0)), ehr)
    wait_until_settled(service, [service.post("/diary", json=diary[:10]).get_json()["outbox_id"]])
    assert len(service.get(f"/patients/{patient}/diary").get_json()["diary"]) == 10
    first = gateway.pull(patient, cursor=True)
    mapped = operations.map_diary([Located(e) for e in diary[:10]])
    assert first["total"] == len(mapped["entry"])
    wait_until_settled(service, [service.post("/diary", json=diary[10:12]).get_json()["outbox_id"]])
    second = gateway.pull(patient, cursor=True)
    keys = {identifiers(r["resource"])[0]["value"].split("/")[0] for r in second["entry"]}
    assert keys == {diary[10]["entry_id"], diary[11]["entry_id"]}


def test_pulled_resources_that_break_their_profile_are_reported_not_dropped(service, ehr, run_id: str) -> None:
    patient = f"Patient/it-{run_id}"
    entry = example_diary(run_id, patient)[6]
    wait_until_settled(service, [service.post("/diary", json=entry).get_json()["outbox_id"]])
    # Another system changes the attack in the EHR so that it breaks the attack profile.
    found = ehr.search("Observation", {"identifier": f"{DIARY_SYSTEM}|{diary_value(entry['entry_id'], 'attack')}"})
    attack = next(found)["entry"][0]["resource"]
    attack["component"][0]["valueInteger"] = 42
    ehr.put(attack)
    pulled = service.get(f"/patients/{patient}/diary").get_json()
    assert [i["resource"] for i in pulled["invalid"]] == [f"Observation/{attack['id']}"]
    assert "mig-att-2" in json.dumps(pulled["invalid"][0]["outcome"])
    assert [i["entry_id"] for i in pulled["incomplete"]] == [entry["entry_id"]]
    assert pulled["diary"] == []


def test_a_retracted_diary_entry_takes_its_medication_statements_with_it(ehr, run_id: str, tmp_path: Path) -> None:
    patient = f"Patient/it-{run_id}"
    diary = example_diary(run_id, patient)
    entry = next(e for e in diary if len(e.get("medications", [])) == 3)  # 24 Oct: three taken, each with an outcome
    other = next(e for e in diary if e.get("medications") and e is not entry)
    gateway = EhrGateway(Settings(database=str(tmp_path / "retract.sqlite3")), ehr)
    bundle = operations.map_diary([Located(entry), Located(other)])
    assert gateway.push_now(bundle, wait=60).state == "sent"
    item = gateway.send_now(gateway.retract_diary(entry["entry_id"], patient=patient), wait=60)
    assert item.state == "sent", item.last_error

    def status(resource_type: str, value: str) -> str:
        [found] = [e["resource"] for page in ehr.search(resource_type, {"identifier": f"{DIARY_SYSTEM}|{value}"})
                   for e in page.get("entry", [])]
        return str(found["status"])

    for i in range(3):
        assert status("MedicationStatement", diary_value(entry["entry_id"], "medication", i)) == "entered-in-error"
        assert status("Observation", diary_value(entry["entry_id"], "medication-outcome", i)) == "entered-in-error"
    assert status("MedicationStatement", diary_value(other["entry_id"], "medication", 0)) == "completed"
