"""The service with its default settings against the test EHR in combined modes that behave like
real EHRs (tests/ehr/README.md, "Modes"): every example order and the diary month pushed twice,
each resource stored exactly once, pulled back and unmapped exactly; an amended order updated; a
cancelled order read back cancelled; what the EHR cannot create refused plainly at once."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_migraine.api import services_of
from fhir_migraine.cli import main
from fhir_migraine.config import EhrSettings, OutboxSettings, Settings
from fhir_migraine.errors import EXIT_EHR
from fhir_migraine.mapping.fhir import identifiers
from tests.conftest import EXAMPLES
from tests.ehr_modes import BYPASS, register_patient
from tests.integration.helpers import example_diary, example_orders, running_service, sort_entries, wait_until_settled

pytestmark = pytest.mark.ehr
Switch = Callable[..., dict[str, Any]]
MRN = "urn:fhir-migraine:test:mrn"

# What each set imitates, and the write strategy the client should then take by itself.
MODE_SETS = {
    # Oracle-Health-like: single requests only, no If-None-Exist, no identifier search, 201 with
    # an empty body, relative links, subjects that must exist.
    "per-resource-searched-by-patient": ("strict", "no-transaction", "no-conditional", "limited-search",
                                         "minimal-response", "relative-links"),
    # Transactions, but no conditional create: re-sends are found by identifier first.
    "transaction-without-conditional": ("strict", "no-conditional", "relative-links"),
    # Single requests with If-None-Exist, and a 429 every fifth request.
    "per-resource-throttled": ("no-transaction", "throttle", "minimal-response"),
}


def stored(ehr_url: str, resource_type: str, system: str, value: str) -> list[dict[str, Any]]:
    """The resources carrying the identifier, as the EHR holds them (searched past every mode)."""
    answer = requests.get(f"{ehr_url}/{resource_type}", params={"identifier": f"{system}|{value}", "_count": "50"},
                          headers=BYPASS, timeout=60)
    answer.raise_for_status()
    return [e["resource"] for e in answer.json().get("entry", [])]


def assert_each_once(ehr_url: str, bundles: list[dict[str, Any]]) -> None:
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            ident = identifiers(resource)[0]
            found = stored(ehr_url, resource["resourceType"], ident["system"], ident["value"])
            assert len(found) == 1, (resource["resourceType"], ident["value"], len(found))


def register(ehr_url: str, resource: dict[str, Any]) -> str:
    """Create a resource past every mode (a strict EHR refuses a reference to one that does not
    exist, so what the orders refer to is registered first); ``Type/<id>``."""
    answer = requests.post(f"{ehr_url}/{resource['resourceType']}", json=resource, timeout=60,
                           headers={**BYPASS, "Content-Type": "application/fhir+json", "Prefer": "return=representation"})
    answer.raise_for_status()
    return f"{resource['resourceType']}/{answer.json()['id']}"


def orders_of(ehr_url: str, run_id: str, patient: str) -> list[dict[str, Any]]:
    """The example orders for the patient, each in an Encounter and by a Practitioner the EHR holds."""
    encounter = register(ehr_url, {
        "resourceType": "Encounter", "status": "in-progress", "subject": {"reference": patient},
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"}})
    practitioner = register(ehr_url, {"resourceType": "Practitioner", "name": [{"family": f"Ordering-{run_id}"}]})
    orders = example_orders(run_id, patient)
    text = json.dumps(orders)
    for old in set(re.findall(r'"(Encounter/[^"]+)"', text)):
        text = text.replace(f'"{old}"', f'"{encounter}"')
    for old in set(re.findall(r'"(Practitioner/[^"]+)"', text)):
        text = text.replace(f'"{old}"', f'"{practitioner}"')
    found: list[dict[str, Any]] = json.loads(text)
    return found


@pytest.fixture(params=list(MODE_SETS), ids=list(MODE_SETS))
def mode_set(request: pytest.FixtureRequest, ehr_modes: Switch) -> Iterator[tuple[str, ...]]:
    names = MODE_SETS[request.param]
    ehr_modes(*names, throttle_every=5)
    yield names


@pytest.fixture
def service(mode_set: tuple[str, ...], ehr_url: str, settings: Settings):
    # Default EHR settings: no strategy, size or search tuning; only the retry wait made short.
    with running_service(settings, EhrSettings(url=ehr_url), OutboxSettings(retry_base=0.1, retry_cap=1.0)) as client:
        yield client


def settle(service: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    settled = wait_until_settled(service, ids, timeout=240)
    assert [s["state"] for s in settled.values()] == ["sent"] * len(ids), \
        [(s["state"], s.get("last_error")) for s in settled.values() if s["state"] != "sent"]
    return settled


def test_every_example_sent_twice_is_stored_once_and_comes_back_exactly(
        service: Any, ehr_url: str, run_id: str, mode_set: tuple[str, ...]) -> None:
    patient = register_patient(ehr_url, MRN, f"rt-{run_id}")
    orders, diary = orders_of(ehr_url, run_id, patient), example_diary(run_id, patient)
    bundles: list[dict[str, Any]] = []
    for attempt in range(2):
        answers = [service.post("/orders", json=o).get_json() for o in orders]
        answers.append(service.post("/diary", json=diary).get_json())
        settled = settle(service, [a["outbox_id"] for a in answers])
        statuses = {e["response"]["status"][:3] for s in settled.values() for r in s["responses"] for e in r["entry"]}
        if attempt == 1:
            assert statuses == {"200"}, statuses
        elif "throttle" not in mode_set:
            assert statuses == {"201"}, statuses
        # Throttled, a part retried after a 429 may find a resource its earlier attempt created (200):
        # exactly once is counted in the EHR below.
        bundles = [a["bundle"] for a in answers]
    assert_each_once(ehr_url, bundles)

    pulled_diary = service.get(f"/patients/{patient}/diary").get_json()
    assert pulled_diary["invalid"] == [] and pulled_diary["incomplete"] == []
    assert sort_entries(pulled_diary["diary"]) == sort_entries(diary)
    pulled_orders = service.get(f"/patients/{patient}/orders").get_json()
    assert sort_entries(pulled_orders["orders"]) == sort_entries(orders)


def test_an_amended_order_is_updated_and_a_cancelled_one_reads_cancelled(
        service: Any, ehr_url: str, run_id: str, mode_set: tuple[str, ...]) -> None:
    patient = register_patient(ehr_url, MRN, f"am-{run_id}")
    order = next(o for o in orders_of(ehr_url, run_id, patient) if o["protocol"] == "ed-migraine-rescue")
    first = service.post("/orders", json=order).get_json()
    settle(service, [first["outbox_id"]])
    amended = {**order, "authored": "2026-12-01T08:55:00Z"}  # signed again ten minutes later
    second = service.post("/orders", json=amended).get_json()
    settle(service, [second["outbox_id"]])
    assert_each_once(ehr_url, [second["bundle"]])
    requests_ = [e["resource"] for e in second["bundle"]["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]
    for resource in requests_:  # what the EHR holds is the amended content, as a second version
        ident = identifiers(resource)[0]
        (held,) = stored(ehr_url, "MedicationRequest", ident["system"], ident["value"])
        assert held["authoredOn"] == "2026-12-01T08:55:00Z" and held["meta"]["versionId"] == "2"

    cancel = service.delete(f"/orders/{order['order_id']}?reason=entered%20for%20the%20wrong%20visit")
    assert cancel.status_code == 202
    settle(service, [cancel.get_json()["outbox_id"]])
    for step in requests_:
        ident = identifiers(step)[0]
        (held,) = stored(ehr_url, "MedicationRequest", ident["system"], ident["value"])
        assert held["status"] == "cancelled" and held["statusReason"]["text"] == "entered for the wrong visit"
    group = next(e["resource"] for e in second["bundle"]["entry"] if e["resource"]["resourceType"] == "RequestGroup")
    (held_group,) = stored(ehr_url, "RequestGroup", identifiers(group)[0]["system"], identifiers(group)[0]["value"])
    assert held_group["status"] == "revoked"

    resent = service.post("/orders", json=amended).get_json()  # a re-send does not revive it
    final = wait_until_settled(service, [resent["outbox_id"]], timeout=240)[resent["outbox_id"]]
    assert final["state"] == "conflict", final


def test_an_mrn_only_diary_entry_lands_on_the_literal_patient_and_is_pulled_back_by_identifier(
        service: Any, ehr_url: str, run_id: str, mode_set: tuple[str, ...]) -> None:
    value = f"mrn-{run_id}"
    patient = register_patient(ehr_url, MRN, value)
    entry = example_diary(run_id, patient)[6]
    entry["patient"] = {"identifier": {"system": MRN, "value": value}}
    answer = service.post("/diary", json=entry).get_json()
    settled = settle(service, [answer["outbox_id"]])[answer["outbox_id"]]
    assert settled["patients_resolved"] == {f"{MRN}|{value}": patient}
    (held,) = stored(ehr_url, "Observation", identifiers(answer["bundle"]["entry"][0]["resource"])[0]["system"],
                     entry["entry_id"])
    assert held["subject"] == {"reference": patient}
    pulled = service.get(f"/patients/identifier={MRN}|{value}/diary").get_json()
    assert [e["entry_id"] for e in pulled["diary"]] == [entry["entry_id"]]


def test_restricted_create_refuses_orders_plainly_at_once_and_takes_the_diary(
        ehr_modes: Switch, ehr_url: str, run_id: str, settings: Settings, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ehr_modes("restricted-create", "no-transaction", "no-conditional", "strict")
    monkeypatch.setenv("FHIR_MIGRAINE_DB", str(tmp_path / "cli.sqlite3"))
    out, err = io.StringIO(), io.StringIO()
    bundle = EXAMPLES / "bundles" / "ed-migraine-rescue.bundle.json"
    code = main(["push", str(bundle), "--ehr", ehr_url, "--wait", "5"], out=out, err=err)
    assert code == EXIT_EHR and out.getvalue() == ""
    assert "does not advertise create MedicationRequest, create RequestGroup in its CapabilityStatement" in err.getvalue()
    assert "nothing was stored" in err.getvalue()

    with running_service(settings, EhrSettings(url=ehr_url), OutboxSettings(retry_base=0.1)) as service:
        gateway = services_of(service.application).gateway
        gateway.probe.probe()  # what the readiness probe does every interval
        state = service.get("/ready").get_json()["ehr"]
        assert list(state["cannot_write"]) == ["orders"], state  # the diary can be written
        assert {"create MedicationRequest", "create RequestGroup"} <= set(state["cannot_write"]["orders"])
        assert state["warning"].startswith("orders cannot be pushed: the EHR does not advertise create ")
        order = example_orders(run_id, "Patient/unused")[0]
        refused = service.post("/orders", json=order)
        assert refused.status_code == 502 and "create MedicationRequest" in refused.get_json()["detail"]
        assert gateway.outbox.counts().get("pending", 0) == 0, "nothing was queued"

        patient = register_patient(ehr_url, MRN, f"rc-{run_id}")
        answer = service.post("/diary", json=example_diary(run_id, patient)[:5]).get_json()
        settle(service, [answer["outbox_id"]])
        assert_each_once(ehr_url, [answer["bundle"]])
