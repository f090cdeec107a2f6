"""The outbox endpoints and commands: listing from columns, putting dead items back (HTTP and CLI),
readiness figures, and the purge command."""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import replace
from typing import Any

import pytest

from fhir_migraine.api import create_app, services_of
from fhir_migraine.cli import main
from fhir_migraine.config import EhrSettings, Settings
from fhir_migraine.ehr.outbox import Outbox
from fhir_migraine.ehr.worker import DAY_S
from tests.conftest import API_TOKEN

PART = {"resourceType": "Bundle", "type": "transaction",
        "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Observation", "subject": {"reference": "Patient/1"}}}]}


@pytest.fixture
def ehr_settings(settings: Settings) -> Settings:
    return replace(settings, ehr=EhrSettings(url="http://127.0.0.1:9/fhir"))  # the worker is never started


@pytest.fixture
def outbox(ehr_settings: Settings) -> Outbox:
    return Outbox(ehr_settings.database)


@pytest.fixture
def api(ehr_settings: Settings) -> Any:
    client = create_app(ehr_settings).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    return client


def dead_item(outbox: Outbox) -> str:
    item_id = outbox.add("order", [PART])
    outbox.claim(30.0)
    outbox.bury(item_id, {"type": "EhrRejected", "message": "refused", "status": 422})
    return item_id


def test_the_listing_never_reads_the_stored_bundles(api: Any, outbox: Outbox, ehr_settings: Settings) -> None:
    item_id = outbox.add("diary", [PART])
    with sqlite3.connect(ehr_settings.database) as db:  # a damaged row: Bundles that are not JSON
        db.execute("UPDATE outbox SET parts = 'not json {', responses = 'not json [' WHERE id = ?", (item_id,))
    answer = api.get("/outbox")
    assert answer.status_code == 200
    assert [(i["id"], i["state"], i["parts"]) for i in answer.get_json()["items"]] == [(item_id, "pending", 1)]
    assert api.get(f"/outbox/{item_id}").get_json()["state"] == "pending"


def test_the_listing_takes_a_limit_and_a_state(api: Any, outbox: Outbox) -> None:
    ids = [outbox.add("order", [PART]) for _ in range(3)]
    dead = dead_item(outbox)
    assert [i["id"] for i in api.get("/outbox?limit=2").get_json()["items"]] == ids[:2]
    assert [i["id"] for i in api.get("/outbox?state=dead").get_json()["items"]] == [dead]
    for bad in ("0", "-1", "x", "1001"):
        answer = api.get(f"/outbox?limit={bad}")
        assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
        assert "$.limit" in answer.get_data(as_text=True)


def test_a_dead_item_is_put_back_over_http(api: Any, outbox: Outbox) -> None:
    item_id = dead_item(outbox)
    answer = api.post(f"/outbox/{item_id}/retry")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["state"] == "pending" and body["history"][0]["last_error"]["status"] == 422
    again = api.post(f"/outbox/{item_id}/retry")
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    assert api.post("/outbox/no-such-item/retry").status_code == 404


def test_putting_back_needs_a_token(ehr_settings: Settings, outbox: Outbox) -> None:
    item_id = dead_item(outbox)
    assert create_app(ehr_settings).test_client().post(f"/outbox/{item_id}/retry").status_code == 401
    assert outbox.get(item_id).state == "dead"


def test_ready_reports_dead_items_and_the_age_of_the_oldest_pending(ehr_settings: Settings) -> None:
    app = create_app(ehr_settings)
    gateway = services_of(app).gateway
    assert gateway is not None
    now = [1_000_000.0]
    gateway.outbox.clock = lambda: now[0]
    dead_item(gateway.outbox)
    gateway.outbox.add("order", [PART])
    now[0] += 42.0
    gateway.outbox.add("order", [PART])
    outbox = app.test_client().get("/ready").get_json()["outbox"]
    assert (outbox["dead"], outbox["pending"], outbox["oldest_pending_age_s"]) == (1, 2, 42.0)


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch, database: str) -> tuple[int, Any, str]:
    monkeypatch.setenv("FHIR_MIGRAINE_DB", database)
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, out=out, err=err)
    return status, json.loads(out.getvalue()) if out.getvalue() else None, err.getvalue()


def test_the_cli_puts_back_one_dead_item_or_all(monkeypatch: pytest.MonkeyPatch, outbox: Outbox,
                                                ehr_settings: Settings) -> None:
    first, second = dead_item(outbox), dead_item(outbox)
    status, printed, _ = run(["outbox", "retry", first], monkeypatch, ehr_settings.database)
    assert (status, printed, outbox.get(first).state) == (0, {"retried": [first]}, "pending")
    status, _, err = run(["outbox", "retry", first], monkeypatch, ehr_settings.database)
    assert status == 1 and "only a dead or conflict item can be put back" in err
    status, printed, _ = run(["outbox", "retry", "--state", "dead"], monkeypatch, ehr_settings.database)
    assert (status, printed, outbox.get(second).state) == (0, {"retried": [second]}, "pending")
    assert run(["outbox", "retry"], monkeypatch, ehr_settings.database)[0] == 2


def test_the_cli_purges_on_demand_and_prints_what(monkeypatch: pytest.MonkeyPatch, ehr_settings: Settings) -> None:
    outbox = Outbox(ehr_settings.database)
    item_id = outbox.add("order", [PART])
    outbox.part_sent(outbox.claim(30.0).id, {"resourceType": "Bundle", "entry": []})
    status, printed, _ = run(["outbox", "purge", "--older-than", "1"], monkeypatch, ehr_settings.database)
    assert (status, printed) == (0, {"older_than_days": 1.0, "purged": []}), "sent just now"
    with sqlite3.connect(ehr_settings.database) as db:
        db.execute("UPDATE outbox SET updated_at = updated_at - ? WHERE id = ?", (2 * DAY_S, item_id))
    status, printed, _ = run(["outbox", "purge", "--older-than", "1"], monkeypatch, ehr_settings.database)
    assert (status, printed["purged"]) == (0, [item_id])
    assert outbox.get(item_id).parts == []
