"""The EHR gateway with a fake EHR: queue, push now, pull (since, cursor, unmapped), readiness."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine.config import EhrSettings, OutboxSettings, Settings
from fhir_migraine.ehr.gateway import EhrGateway, transaction_response
from fhir_migraine.ehr.interface import Page
from fhir_migraine.errors import EhrRejected, EhrUnavailable, InputError
from fhir_migraine.mapping.fhir import identifiers
from tests.conftest import EXAMPLES

MONTH = json.loads((EXAMPLES / "diary" / "month.bundle.json").read_text(encoding="utf-8"))


class FakeEhr:
    """Answers transactions (or raises the scripted error), searches with the resources it holds (one page)."""

    base_url = "http://ehr.invalid/fhir"

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.transactions: list[dict[str, Any]] = []
        self.searches: list[tuple[str, dict[str, str]]] = []
        self.metadata_calls = 0
        self.resources: list[dict[str, Any]] = []
        self.statement: dict[str, Any] = {"resourceType": "CapabilityStatement"}  # says nothing: every write is tried

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        if self.errors:
            raise self.errors.pop(0)
        self.transactions.append(bundle)
        self.resources += [e["resource"] for e in bundle["entry"]]
        entries = [{"response": {"status": "201 Created"}} for _ in bundle["entry"]]
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}

    def get_page(self, url: str, params: dict[str, str] | None = None) -> Page:
        resource_type = url.removeprefix(f"{self.base_url}/")
        params = params or {}
        self.searches.append((resource_type, params))
        system = params["identifier"].rstrip("|")
        found = [r for r in self.resources if r["resourceType"] == resource_type
                 and any(i.get("system") == system for i in identifiers(r))]
        entries = [{"fullUrl": f"{resource_type}/{n}", "resource": {**r, "id": f"{n}"}} for n, r in enumerate(found)]
        return Page({"resourceType": "Bundle", "type": "searchset", "meta": {"lastUpdated": "2026-12-01T08:00:00Z"},
                     "entry": entries})

    def metadata(self) -> dict[str, Any]:
        self.metadata_calls += 1
        return self.statement


@pytest.fixture
def gateway_settings(tmp_path: Path) -> Settings:
    return Settings(database=str(tmp_path / "gw.sqlite3"), ehr=EhrSettings(url="http://ehr.invalid/fhir", transaction_size=40),
                    outbox=OutboxSettings(retry_base=0.01, retry_cap=0.01))


def test_queue_stores_the_bundle_split_into_transactions(gateway_settings: Settings) -> None:
    gateway = EhrGateway(gateway_settings, FakeEhr())
    item = gateway.outbox.get(gateway.queue(MONTH, kind="diary"))
    assert item is not None and (item.kind, item.state) == ("diary", "pending")
    assert item.part_count > 1 and all(len(p["entry"]) <= 40 for p in item.parts[:-1])
    assert item.resource_count == len(MONTH["entry"])


@pytest.mark.parametrize(
    "bundle",
    [{"resourceType": "Patient"}, {**MONTH, "type": "batch"},
     {**MONTH, "entry": [{**MONTH["entry"][0], "request": {"method": "PUT", "url": "Observation/1"}}]}],
    ids=["not-a-bundle", "a-batch", "not-a-conditional-create"],
)
def test_queue_refuses_what_is_not_a_conditional_create_transaction(gateway_settings: Settings, bundle: dict[str, Any]) -> None:
    gateway = EhrGateway(gateway_settings, FakeEhr())
    with pytest.raises(InputError):
        gateway.queue(bundle)
    assert gateway.outbox.counts()["pending"] == 0


def test_push_now_sends_every_part_and_merges_the_answers(gateway_settings: Settings) -> None:
    ehr = FakeEhr(EhrUnavailable("down for a moment"))
    item = EhrGateway(gateway_settings, ehr).push_now(MONTH, wait=10, sleep=lambda s: None)
    assert item.state == "sent"
    answer = transaction_response(item)
    assert answer["type"] == "transaction-response" and len(answer["entry"]) == len(MONTH["entry"])
    assert sum(len(t["entry"]) for t in ehr.transactions) == len(MONTH["entry"])


def test_push_now_reports_a_refusal_as_a_dead_item(gateway_settings: Settings) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}
    item = EhrGateway(gateway_settings, FakeEhr(EhrRejected("400", status=400, outcome=outcome))).push_now(MONTH, wait=10)
    assert item.state == "dead"
    assert item.last_error is not None and item.last_error["outcome"] == outcome


def test_push_now_leaves_an_item_it_could_not_send_in_time_queued(gateway_settings: Settings) -> None:
    item = EhrGateway(gateway_settings, FakeEhr(*[EhrUnavailable("down")] * 50)).push_now(MONTH, wait=0)
    assert item.state == "pending"


def test_pull_asks_each_of_the_projects_identifier_systems_and_unmaps(gateway_settings: Settings) -> None:
    ehr = FakeEhr()
    gateway = EhrGateway(gateway_settings, ehr)
    gateway.push_now(MONTH, wait=10)
    patient = MONTH["entry"][0]["resource"]["subject"]["reference"]
    bundle = gateway.pull(patient)
    assert bundle["total"] == len(MONTH["entry"])
    assert {p["subject"] for _, p in ehr.searches} == {patient}
    found = gateway.pull_unmapped(patient)
    assert found["resources"] == len(MONTH["entry"]) and found["invalid"] == [] and found["incomplete"] == []
    assert len(found["diary"]) == len({identifiers(e["resource"])[0]["value"].split("/")[0] for e in MONTH["entry"]})


def test_a_cursor_pull_asks_only_for_what_changed_since_the_last_one(gateway_settings: Settings) -> None:
    ehr = FakeEhr()
    gateway = EhrGateway(gateway_settings, ehr)
    gateway.pull("Patient/1", cursor=True)
    assert all("_lastUpdated" not in p for _, p in ehr.searches)
    ehr.searches.clear()
    gateway.pull("Patient/1", cursor=True)
    assert {p["_lastUpdated"][:4] for _, p in ehr.searches} == {"ge20"}
    ehr.searches.clear()
    gateway.pull("Patient/1", since="2026-11-01T00:00:00Z")
    assert {p["_lastUpdated"] for _, p in ehr.searches} == {"ge2026-11-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("patient", "options", "path"),
    [("Practitioner/9", {}, "$.patient"), ("Patient/1", {"since": "yesterday"}, "$.since"),
     ("Patient/1", {"since": "2026-11-01T00:00:00Z", "cursor": True}, "$.since")],
    ids=["not-a-patient", "since-not-an-instant", "since-and-cursor"],
)
def test_a_bad_pull_request_is_an_input_error_naming_the_field(gateway_settings: Settings, patient: str,
                                                                options: dict[str, Any], path: str) -> None:
    ehr = FakeEhr()
    with pytest.raises(InputError) as caught:
        EhrGateway(gateway_settings, ehr).pull(patient, **options)
    assert [p.path for p in caught.value.problems] == [path]
    assert ehr.searches == []


def test_the_ehr_state_comes_from_the_probe_and_never_calls_the_ehr(gateway_settings: Settings) -> None:
    ehr = FakeEhr()
    gateway = EhrGateway(gateway_settings, ehr)
    assert gateway.ehr_state() == {"configured": True, "reachable": None, "probe_age_s": None}
    assert ehr.metadata_calls == 0, "readiness never waits for the EHR"
    gateway.probe.probe()
    state = gateway.ehr_state()
    assert (state["reachable"], ehr.metadata_calls) == (True, 1)
    assert gateway.ehr_state()["reachable"] is True and ehr.metadata_calls == 1
