"""POST /bulk-pulls, GET /bulk-pulls/{id} and its patients through Flask's test client: a pull is
queued (202 with Location), every bad body is a 4xx naming its field (generated ones too), its
members are given once it is done, and the group puller runs it against an EHR double."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from fhir_migraine.api import create_app, services_of
from fhir_migraine.config import EhrSettings, Settings, WorkerSettings
from fhir_migraine.ehr.group_puller import GroupPuller
from tests.conftest import API_TOKEN, examples
from tests.unit.test_bulk import ExportingEhr, ndjson, observation


def with_ehr(settings: Settings) -> Settings:
    """An EHR nobody answers at and no worker: the group puller is driven by hand."""
    return replace(settings, ehr=EhrSettings(url="http://127.0.0.1:9/fhir"), worker=WorkerSettings(enabled=False))


@pytest.fixture
def service(settings: Settings):
    app = create_app(with_ehr(settings))
    app.config["TESTING"] = True
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    return client


def test_a_bulk_pull_is_queued_and_shown(service) -> None:
    answer = service.post("/bulk-pulls", json={"group": "7", "since": "2026-11-01T00:00:00Z"})
    assert answer.status_code == 202
    body = answer.get_json()
    assert answer.headers["Location"] == f"/bulk-pulls/{body['bulk_pull_id']}"
    assert (body["group"], body["state"], body["since"]) == ("Group/7", "pending", "2026-11-01T00:00:00Z")
    assert service.get(answer.headers["Location"]).get_json() == body
    refused = service.get(f"{answer.headers['Location']}/patients")
    assert refused.status_code == 409 and "pending" in refused.get_json()["detail"]


def test_unknown_pulls_are_404_and_without_an_ehr_there_is_nothing_to_pull(service, client) -> None:
    assert service.get("/bulk-pulls/nothing").status_code == 404
    assert service.get("/bulk-pulls/nothing/patients").status_code == 404
    answer = client.post("/bulk-pulls", json={"group": "Group/7"})
    assert answer.status_code == 404 and "FHIR_MIGRAINE_EHR_URL" in answer.get_json()["detail"]


@pytest.mark.parametrize(("body", "path"), [
    ({}, "$.group"), ({"group": 7}, "$.group"), ({"group": "Patient/7"}, "$.group"), ({"group": "Group/a b"}, "$.group"),
    ({"group": "7", "since": "yesterday"}, "$.since"), ({"group": "7", "since": 5}, "$.since"),
    ({"group": "7", "patients": []}, "$.patients"), ([], "$"),
])
def test_a_bad_body_is_a_422_naming_its_field(service, body: Any, path: str) -> None:
    answer = service.post("/bulk-pulls", json=body)
    assert answer.status_code == 422
    assert path in [e["path"] for e in answer.get_json()["errors"]]


def test_a_body_that_is_not_json_is_a_400_and_another_type_a_415(service) -> None:
    assert service.post("/bulk-pulls", data=b"{", content_type="application/json").status_code == 400
    assert service.post("/bulk-pulls", data=b"group=7", content_type="text/plain").status_code == 415


def test_without_the_token_nothing_is_queued_or_shown(service) -> None:
    service.environ_base.pop("HTTP_AUTHORIZATION")
    assert service.post("/bulk-pulls", json={"group": "7"}).status_code == 401
    assert service.get("/bulk-pulls/x").status_code == 401


@hsettings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                             st.sampled_from(["group", "since", "x"]) | st.text(max_size=5), inner, max_size=3),
                         max_leaves=8))
def test_any_body_is_queued_or_refused_with_a_4xx(service, body: Any) -> None:
    answer = service.post("/bulk-pulls", json=body)
    assert answer.status_code in (202, 400, 422), answer.get_data(as_text=True)  # 400: no body at all (null)
    if answer.status_code != 202:
        assert answer.get_json()["errors"]


def test_the_group_puller_runs_a_queued_pull_and_its_members_are_given_as_ndjson(service, tmp_path) -> None:
    found = services_of(service.application)
    ehr = ExportingEhr({"http://ehr.test/fhir/Binary/1": ndjson(observation("Patient/a", "1"))}, waits=0)
    found.gateway.ehr = ehr
    found.gateway.capabilities.forget()
    found.gateway.capabilities.fetch = ehr.metadata
    pull_id = service.post("/bulk-pulls", json={"group": "Group/7"}).get_json()["bulk_pull_id"]
    exports = tmp_path / "exports"
    exports.mkdir()
    puller = GroupPuller(found.group_pulls, found.gateway, lease=30, retention_days=30, folder=str(exports))
    assert puller.run_once() == 1
    summary = service.get(f"/bulk-pulls/{pull_id}").get_json()
    assert (summary["state"], summary["method"], summary["members"], summary["resources"]) == ("done", "bulk", 2, 1)
    answer = service.get(summary["patients"])
    assert answer.status_code == 200 and answer.mimetype == "application/x-ndjson"
    members = [json.loads(line) for line in answer.get_data(as_text=True).splitlines()]
    assert [m["patient"] for m in members] == ["Patient/a", "Patient/b"]
    assert [m["resources"] for m in members] == [1, 0]
    assert list(exports.iterdir()) == [], "the export's files are gone"
