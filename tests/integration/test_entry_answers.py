"""HAPI's answers read entry by entry: a batch with one entry HAPI refuses (412) is dead, never
``sent``, each entry's outcome kept; and a transaction answered as a batch (HAPI's answer
rewritten by the fault proxy) makes the writer step down to one request per resource, or, with
the transaction strategy configured, is dead at once and, put back, reaches HAPI exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_migraine.config import EhrSettings, OutboxSettings
from fhir_migraine.ehr.capabilities import Capabilities
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.ehr.outbox import Outbox
from fhir_migraine.ehr.worker import RetryPolicy, drain
from fhir_migraine.ehr.writer import Writer
from fhir_migraine.mapping.fhir import identifiers
from tests.faultproxy import FaultProxy, Rewrite
from tests.integration.conftest import count_by_identifier, tmp_database
from tests.integration.helpers import example_orders, running_service, wait_until_settled

pytestmark = pytest.mark.ehr

SYSTEM = "urn:fhir-migraine:test:entry-answers"


def observation(value: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "identifier": [{"system": SYSTEM, "value": value}],
            "code": {"text": "test of entry answers"}, "valueString": "x"}


def conditional_create(value: str) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{value}", "resource": observation(value),
            "request": {"method": "POST", "url": "Observation", "ifNoneExist": f"identifier={SYSTEM}|{value}"}}


def test_a_batch_with_one_entry_hapi_refuses_is_dead_and_keeps_each_entry_outcome(
    ehr_url: str, ehr: FhirClient, run_id: str, tmp_path: Path
) -> None:
    twice, fresh = f"twice-{run_id}", f"fresh-{run_id}"
    for _ in range(2):  # two resources with one identifier: a conditional create on it matches both
        created = requests.post(f"{ehr_url}/Observation", json=observation(twice), timeout=30,
                                headers={"Content-Type": "application/fhir+json"})
        assert created.status_code == 201, created.text
    part = {"resourceType": "Bundle", "type": "transaction", "entry": [conditional_create(twice), conditional_create(fresh)]}
    outbox = Outbox(tmp_database(tmp_path))
    item_id = outbox.add("bundle", [part])

    # Written as a batch (what the client does against an EHR that advertises batch but not transaction).
    drain(outbox, ehr, RetryPolicy(base=0.1, cap=0.1, lease=60.0), writer=Writer(ehr, Capabilities.unknown, None, "batch"))

    item = outbox.get(item_id)
    assert item.state == "dead" and item.responses == []
    entries = item.last_error["entries"]
    assert entries[0]["status"].startswith("412") and entries[0]["resource"] == "Observation"
    assert entries[0]["outcome"], "HAPI says why"
    assert entries[1]["status"].startswith("201") and entries[1]["location"].startswith("Observation/")
    assert count_by_identifier(ehr, "Observation", SYSTEM, fresh) == 1


def as_batch(body: dict[str, Any]) -> dict[str, Any]:
    """HAPI's transaction-response as a server that processed the transaction as a batch answers it."""
    if body.get("resourceType") == "Bundle" and body.get("type") == "transaction-response":
        return {**body, "type": "batch-response"}
    return body


@pytest.fixture
def proxy(ehr_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(ehr_url.rsplit("/fhir", 1)[0]) as running:
        yield running


def test_a_transaction_answered_as_a_batch_steps_down_and_reaches_hapi_once(
    proxy: FaultProxy, settings: Any, ehr: FhirClient, run_id: str
) -> None:
    proxy.set_mode(Rewrite(as_batch, "as-batch"))
    ehr_settings = EhrSettings(url=f"{proxy.url}/fhir", timeout=30, probe_interval=60)
    with running_service(settings, ehr_settings, OutboxSettings(retry_base=0.2, retry_cap=1.0)) as service:
        answer = service.post("/orders", json=example_orders(run_id, f"Patient/entries-{run_id}")[0])
        assert answer.status_code == 202
        item_id, bundle = answer.get_json()["outbox_id"], answer.get_json()["bundle"]
        sent = wait_until_settled(service, [item_id], timeout=60)[item_id]
        # The batch-response is final for the transaction; the writer takes one request per
        # resource instead (HAPI advertises no batch), and the conditional creates find what the
        # batch-processed transaction created.
        assert sent["state"] == "sent" and sent["attempts"] == 1, sent
        assert {e["response"]["status"][:3] for r in sent["responses"] for e in r["entry"]} == {"200"}
    assert_once(ehr, bundle)


def test_with_the_transaction_strategy_configured_it_is_dead_then_put_back_reaches_hapi_once(
    proxy: FaultProxy, settings: Any, ehr: FhirClient, run_id: str
) -> None:
    proxy.set_mode(Rewrite(as_batch, "as-batch"))
    ehr_settings = EhrSettings(url=f"{proxy.url}/fhir", timeout=30, probe_interval=60, write_strategy="transaction")
    with running_service(settings, ehr_settings, OutboxSettings(retry_base=0.2, retry_cap=1.0)) as service:
        answer = service.post("/orders", json=example_orders(run_id, f"Patient/entries-{run_id}")[0])
        assert answer.status_code == 202
        item_id, bundle = answer.get_json()["outbox_id"], answer.get_json()["bundle"]
        dead = wait_until_settled(service, [item_id], timeout=60)[item_id]
        assert dead["state"] == "dead" and dead["attempts"] == 1
        assert dead["last_error"]["type"] == "EhrUnsupported" and "batch-response" in dead["last_error"]["message"]
        assert len(dead["last_error"]["entries"]) == len(bundle["entry"])
        assert all(e["status"].startswith("201") and e["location"] for e in dead["last_error"]["entries"])

        proxy.set_mode(None)  # the operator fixes the EHR's side and puts the item back
        assert service.post(f"/outbox/{item_id}/retry").status_code == 200
        sent = wait_until_settled(service, [item_id], timeout=60)[item_id]
        assert sent["state"] == "sent", sent
    assert_once(ehr, bundle)


def assert_once(ehr: FhirClient, bundle: dict[str, Any]) -> None:
    for entry in bundle["entry"]:
        resource = entry["resource"]
        ident = identifiers(resource)[0]
        assert count_by_identifier(ehr, resource["resourceType"], ident["system"], ident["value"]) == 1
