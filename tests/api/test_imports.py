"""The diary's request limit (POST /diary) and the bulk path (POST /imports) through Flask's test client."""

from __future__ import annotations

import json
from dataclasses import replace

from fhir_migraine.api import create_app
from fhir_migraine.config import Settings
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
