"""The outcome of each entry of a transaction the EHR did not wholly accept, as the operator sees it:
``GET /outbox/{id}``, the listing of dead items, and ``fhir-migraine push``."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from fhir_migraine.api import create_app
from fhir_migraine.cli import main
from fhir_migraine.config import EhrSettings, Settings
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.ehr.outbox import Outbox
from fhir_migraine.ehr.worker import RetryPolicy, drain
from fhir_migraine.errors import EXIT_EHR
from tests.conftest import API_TOKEN, EXAMPLES
from tests.faultproxy import FaultProxy, Status
from tests.unit.test_ehr_answers import AS_BATCH_ONE_412, PART, Session


@pytest.fixture
def ehr_settings(settings: Settings) -> Settings:
    return replace(settings, ehr=EhrSettings(url="http://127.0.0.1:9/fhir"))  # the worker is never started


@pytest.fixture
def api(ehr_settings: Settings) -> Any:
    client = create_app(ehr_settings).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    return client


def test_each_entry_outcome_of_a_refused_transaction_is_shown_by_the_api(api: Any, ehr_settings: Settings) -> None:
    outbox = Outbox(ehr_settings.database)
    item_id = outbox.add("order", [PART])
    drain(outbox, FhirClient("http://ehr.test/fhir", session=Session((200, AS_BATCH_ONE_412))), RetryPolicy())
    shown = api.get(f"/outbox/{item_id}").get_json()
    assert shown["state"] == "dead" and shown["parts_sent"] == 0
    assert shown["last_error"]["type"] == "EhrUnsupported" and "batch-response" in shown["last_error"]["message"]
    assert shown["last_error"]["entries"] == [
        {"index": 0, "resource": "MedicationRequest", "status": "412 Precondition Failed",
         "outcome": "HAPI-0958: Failed to CREATE: 2 matches for the condition", "issue_codes": ["duplicate"]},
        {"index": 1, "resource": "RequestGroup", "status": "201 Created", "location": "RequestGroup/8/_history/1"},
    ]
    document = api.get("/openapi.json").get_json()
    described = Draft202012Validator({"$ref": "#/components/schemas/OutboxItem", **document})
    assert list(described.iter_errors(shown)) == [], "the OpenAPI description names what is shown"
    listed = api.get("/outbox?state=dead").get_json()["items"]
    assert [i["last_error"]["entries"][0]["status"] for i in listed] == ["412 Precondition Failed"]


def test_push_exits_3_naming_the_failed_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = EXAMPLES / "bundles" / "ed-migraine-rescue.bundle.json"
    sent = json.loads(bundle.read_text(encoding="utf-8"))
    statuses = ["201 Created"] * len(sent["entry"])
    statuses[1] = "412 Precondition Failed"
    answer = {"resourceType": "Bundle", "type": "transaction-response",
              "entry": [{"response": {"status": s}} for s in statuses]}
    monkeypatch.setenv("FHIR_MIGRAINE_DB", str(tmp_path / "cli.sqlite3"))
    out, err = io.StringIO(), io.StringIO()
    with FaultProxy("http://127.0.0.1:9") as ehr:  # nothing upstream: the proxy answers itself
        ehr.set_mode(Status(200, body=json.dumps(answer)))
        code = main(["push", str(bundle), "--ehr", ehr.url + "/fhir", "--wait", "5"], out=out, err=err)
        # The CapabilityStatement read once (this answer is not one: every write is tried), then the
        # transaction once: a final answer is not sent again.
        assert ehr.requests_seen == 2, "a final answer is not sent again"
    assert code == EXIT_EHR and out.getvalue() == ""
    message = err.getvalue()
    assert "is dead" in message and f"1 of {len(statuses)} entries" in message and "entry 1 (MedicationRequest) 412" in message
