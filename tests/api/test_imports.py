"""The diary's request limit (POST /diary) and the bulk path (POST /imports) through Flask's test client."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fhir_migraine.api import create_app, importer_of, services_of, start_outbox_worker, stop_outbox_worker
from fhir_migraine.config import EhrSettings, Settings, WorkerSettings
from tests.conftest import API_TOKEN, EXAMPLES

MONTH = json.loads((EXAMPLES / "diary" / "month.json").read_text())


def client_of(settings: Settings):
    app = create_app(settings)
    app.config["TESTING"] = True
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    return client


def test_post_diary_beyond_the_entry_limit_is_a_413_naming_the_limit_and_the_bulk_path(settings) -> None:
    client = client_of(replace(settings, http=replace(settings.http, max_diary_entries=3)))
    assert client.post("/diary", json=MONTH[:3]).status_code == 201
    answer = client.post("/diary", json=MONTH[:4])
    assert answer.status_code == 413
    assert answer.mimetype == "application/problem+json"
    body = answer.get_json()
    assert "at most 3" in body["detail"] and "FHIR_MIGRAINE_MAX_DIARY_ENTRIES" in body["detail"]
    assert "POST /imports" in body["detail"]
    assert body["errors"] == [{"path": "$", "message": "has 4 entries, more than the limit of 3"}]


def test_post_diary_counts_entries_before_mapping_any(client) -> None:
    # 1001 entries that are not even diary entries: the default limit answers before any is read.
    answer = client.post("/diary", json=[{} for _ in range(1001)])
    assert answer.status_code == 413
    assert "at most 1000" in answer.get_json()["detail"]


# --- POST /imports and GET /imports/{id} ---------------------------------------------------------

NDJSON = "application/x-ndjson"


def with_ehr(settings: Settings, **http: int) -> Settings:
    """An EHR nobody answers at and no worker: items stay in the outbox, the importer is driven by hand."""
    return replace(settings, ehr=EhrSettings(url="http://127.0.0.1:9/fhir"), worker=WorkerSettings(enabled=False),
                   http=replace(settings.http, **http))


def lines(entries: list[dict]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in entries)


def run_importer(client) -> None:
    found = services_of(client.application)
    assert found.imports is not None and found.gateway is not None
    importer_of(found.settings, found.imports, found.gateway).run_once()


@pytest.fixture
def ehr_client(settings: Settings):
    return client_of(with_ehr(settings))


def test_an_ndjson_import_is_accepted_then_mapped_and_queued_in_chunks(ehr_client) -> None:
    body = lines(MONTH) + b'{"entry_id": "bad"}\n'
    answer = ehr_client.post("/imports", data=body, content_type=NDJSON)
    assert answer.status_code == 202
    import_id = answer.get_json()["import_id"]
    assert answer.get_json() == {"import_id": import_id, "state": "pending"}
    assert answer.headers["Location"] == f"/imports/{import_id}"
    before = ehr_client.get(f"/imports/{import_id}").get_json()
    assert (before["state"], before["bytes"], before["lines_read"], before["entries_queued"]) == ("pending", len(body), 0, 0)

    run_importer(ehr_client)
    after = ehr_client.get(f"/imports/{import_id}")
    assert after.status_code == 200
    found = after.get_json()
    assert (found["state"], found["lines_read"], found["entries_queued"], found["invalid"]) == ("done", 31, 30, 1)
    assert {p["location"] for p in found["problems"]} == {"line 31"}
    assert found["outbox_items"] == len(found["outbox_ids"]) == 1
    item = ehr_client.get(f"/outbox/{found['outbox_ids'][0]}").get_json()
    assert (item["kind"], item["state"]) == ("diary", "pending")
    golden = json.loads((EXAMPLES / "diary" / "month.bundle.json").read_text())
    assert item["resources"] == len(golden["entry"])


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", f"{NDJSON}; charset=latin-1", None])
def test_an_import_that_is_not_sent_as_utf8_ndjson_is_a_415(ehr_client, content_type: str | None) -> None:
    answer = ehr_client.post("/imports", data=lines(MONTH[:1]), content_type=content_type)
    assert answer.status_code == 415
    assert answer.mimetype == "application/problem+json"
    assert NDJSON in answer.get_json()["detail"]


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"", "empty"), (b"\n \n", "empty"), (json.dumps(MONTH[:2]).encode(), "is not NDJSON"),
     (b'{"entry_id": "\xff"}\n', "is not UTF-8")],
    ids=["empty", "blank", "json-array", "latin-1"],
)
def test_an_import_that_is_empty_or_not_ndjson_or_not_utf8_is_a_400(ehr_client, body: bytes, message: str) -> None:
    answer = ehr_client.post("/imports", data=body, content_type=NDJSON)
    assert answer.status_code == 400
    assert answer.mimetype == "application/problem+json"
    assert message in answer.get_json()["errors"][0]["message"]
    jobs = services_of(ehr_client.application).imports
    assert jobs is not None and list(jobs.folder.iterdir()) == []


def test_an_import_has_its_own_size_limit_above_the_body_limit(settings: Settings) -> None:
    body = lines(MONTH)
    client = client_of(with_ehr(settings, max_import_bytes=len(body)))
    client.application.config["MAX_CONTENT_LENGTH"] = 1024  # the other endpoints' body limit
    assert client.post("/imports", data=body, content_type=NDJSON).status_code == 202
    answer = client.post("/imports", data=body + b"\n", content_type=NDJSON)
    assert answer.status_code == 413
    assert answer.mimetype == "application/problem+json"
    assert "FHIR_MIGRAINE_MAX_IMPORT_BYTES" in answer.get_json()["detail"]


def test_an_unknown_import_is_a_404_and_without_an_ehr_there_are_no_imports(ehr_client, client) -> None:
    assert ehr_client.get("/imports/no-such-import").status_code == 404
    answer = client.post("/imports", data=lines(MONTH[:1]), content_type=NDJSON)
    assert answer.status_code == 404
    assert "FHIR_MIGRAINE_EHR_URL" in answer.get_json()["detail"]


def test_imports_need_a_token(ehr_client) -> None:
    anonymous = ehr_client.application.test_client()
    assert anonymous.post("/imports", data=lines(MONTH[:1]), content_type=NDJSON).status_code == 401
    assert anonymous.get("/imports/anything").status_code == 401


def test_the_importer_starts_and_stops_with_the_outbox_worker(settings: Settings) -> None:
    app = create_app(replace(with_ehr(settings), worker=WorkerSettings(enabled=True, interval=0.05)))
    found = services_of(app)
    assert found.importer is None
    assert start_outbox_worker(app, stop_at_exit=False)
    assert found.importer is not None and found.importer.running
    importer = found.importer
    assert stop_outbox_worker(app, timeout=5)
    assert not importer.running and found.importer is None


def test_openapi_describes_the_imports_and_the_diary_limit(client) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "413" in paths["/diary"]["post"]["responses"]
    post = paths["/imports"]["post"]
    assert NDJSON in post["requestBody"]["content"]
    assert {"202", "400", "413", "415"} <= set(post["responses"])
    assert "200" in paths["/imports/{id}"]["get"]["responses"]
