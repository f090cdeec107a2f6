"""GET /metrics: refused without the metrics scope, served with it in the text format; the request
histogram labelled by route template, the deliveries counted by status class, the outbox read at
scrape time; and no patient, identifier, id or token anywhere in what it shows."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client.parser import text_string_to_metric_families

from fhir_migraine.api import create_app, services_of
from fhir_migraine.config import EhrSettings, Settings, WorkerSettings
from fhir_migraine.errors import EhrRejected, EhrUnavailable
from tests.conftest import API_TOKEN, EXAMPLES, PROTOCOLS_TOKEN
from tests.fakehttp import BASE
from tests.memoryehr import MemoryEhr

METRICS_TOKEN = "test-token-of-the-scraper"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}
MONTH = json.loads((EXAMPLES / "diary" / "month.json").read_text(encoding="utf-8"))

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Any) -> Samples:
    answer = client.get("/metrics", headers=SCRAPER)
    assert answer.status_code == 200
    return parse(answer.get_data(as_text=True))


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metered(settings: Settings) -> Settings:
    return replace(settings, api=replace(settings.api, metrics_token=METRICS_TOKEN))


@pytest.fixture
def service(metered: Settings) -> Any:
    """The service with an EHR in memory (taking transactions) and no worker thread: the test
    delivers with ``send_now``."""
    app = create_app(replace(metered, ehr=EhrSettings(url=BASE), worker=WorkerSettings(enabled=False)))
    app.config["TESTING"] = True
    gateway = services_of(app).gateway
    assert gateway is not None
    gateway.ehr = MemoryEhr(bundles=("transaction",), conditional=True, identifier_search=True)  # type: ignore[assignment]
    gateway.capabilities.fetch = gateway.ehr.metadata
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {API_TOKEN}"
    return app, client


# --- protection ---------------------------------------------------------------------------------

def test_metrics_needs_the_metrics_scope(metered: Settings) -> None:
    client = create_app(metered).test_client()
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.mimetype == "application/problem+json"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    for token in (API_TOKEN, PROTOCOLS_TOKEN):  # the API's own tokens read no metrics
        refused = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403 and "migraine:metrics" in refused.get_json()["detail"]
    served = client.get("/metrics", headers=SCRAPER)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert served.headers["Cache-Control"] == "no-store"
    families = {f.name for f in text_string_to_metric_families(served.get_data(as_text=True))}
    assert {"fhir_migraine_http_request_duration_seconds", "fhir_migraine_ehr_request_duration_seconds",
            "fhir_migraine_outbox_deliveries"} <= families


def test_without_a_metrics_token_nobody_but_a_scoped_jwt_reads_metrics(settings: Settings) -> None:
    client = create_app(settings).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 403


def test_the_metrics_token_grants_nothing_else(service: Any) -> None:
    _, client = service
    assert client.get("/protocols", headers=SCRAPER).status_code == 403
    assert client.post("/diary", json=MONTH[0], headers=SCRAPER).status_code == 403
    assert client.get("/outbox", headers=SCRAPER).status_code == 403


def test_a_jwt_with_the_metrics_scope_reads_metrics(settings: Settings) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    api = replace(settings.api, jwt_key=public.decode(), jwt_audience="https://fhir-migraine.test")
    client = create_app(replace(settings, api=api)).test_client()

    def token(scope: str) -> dict[str, str]:
        claims = {"aud": "https://fhir-migraine.test", "exp": int(time.time()) + 300, "sub": "prometheus", "scope": scope}
        return {"Authorization": f"Bearer {jwt.encode(claims, key, algorithm='ES256')}"}

    assert client.get("/metrics", headers=token("migraine:metrics")).status_code == 200
    assert client.get("/metrics", headers=token("migraine:read migraine:write migraine:protocols")).status_code == 403
    assert client.get("/protocols", headers=token("migraine:metrics")).status_code == 403


def test_the_metrics_token_must_differ_from_the_others(settings: Settings) -> None:
    from fhir_migraine.errors import ConfigError

    for same in (API_TOKEN, PROTOCOLS_TOKEN):
        with pytest.raises(ConfigError, match="FHIR_MIGRAINE_API_METRICS_TOKEN"):
            create_app(replace(settings, api=replace(settings.api, metrics_token=same)))


# --- what it counts -------------------------------------------------------------------------------

def test_a_diary_posted_and_delivered_shows_in_the_counters_and_the_outbox_gauges(service: Any) -> None:
    app, client = service
    before = scrape(client)
    assert value(before, "fhir_migraine_outbox_readable") == 1
    assert {state: value(before, "fhir_migraine_outbox_items", state=state)
            for state in ("pending", "sending", "sent", "dead", "conflict")} == dict.fromkeys(
        ("pending", "sending", "sent", "dead", "conflict"), 0)
    assert value(before, "fhir_migraine_outbox_oldest_pending_age_seconds") == 0

    posted = client.post("/diary", json=MONTH[:3])
    assert posted.status_code == 202
    item_id = posted.get_json()["outbox_id"]
    queued = scrape(client)
    assert value(queued, "fhir_migraine_outbox_items", state="pending") == 1
    assert value(queued, "fhir_migraine_outbox_items", state="sent") == 0
    assert value(queued, "fhir_migraine_outbox_oldest_pending_age_seconds") >= 0
    route = {"route": "/diary", "method": "POST", "status_class": "2xx"}
    assert (value(queued, "fhir_migraine_http_request_duration_seconds_count", **route)
            - value(before, "fhir_migraine_http_request_duration_seconds_count", **route)) == 1

    gateway = services_of(app).gateway
    item = gateway.send_now(item_id, wait=10)
    assert item.state == "sent"
    after = scrape(client)
    delivered = (value(after, "fhir_migraine_outbox_deliveries_total", status_class="2xx")
                 - value(before, "fhir_migraine_outbox_deliveries_total", status_class="2xx"))
    assert delivered == item.part_count == 1
    assert value(after, "fhir_migraine_outbox_items", state="pending") == 0
    assert value(after, "fhir_migraine_outbox_items", state="sent") == 1
    assert value(after, "fhir_migraine_outbox_oldest_pending_age_seconds") == 0


def test_failed_deliveries_are_counted_by_status_class(service: Any) -> None:
    app, client = service
    gateway = services_of(app).gateway
    ehr = gateway.ehr
    before = scrape(client)
    # The first transaction: no answer; the second: a 503; the third: a refusal (the item dies).
    ehr.fail = {1: EhrUnavailable("could not connect"), 2: EhrUnavailable("busy", status=503),
                3: EhrRejected("refused", status=422)}
    item_id = client.post("/diary", json=MONTH[0]).get_json()["outbox_id"]
    gateway.policy = replace(gateway.policy, base=0.01, cap=0.02)
    item = gateway.send_now(item_id, wait=10)
    assert item.state == "dead"
    after = scrape(client)
    counted = {c: value(after, "fhir_migraine_outbox_deliveries_total", status_class=c)
               - value(before, "fhir_migraine_outbox_deliveries_total", status_class=c)
               for c in ("2xx", "4xx", "5xx", "network", "other")}
    assert counted == {"2xx": 0, "4xx": 1, "5xx": 1, "network": 1, "other": 0}
    assert value(after, "fhir_migraine_outbox_items", state="dead") == 1


def test_the_route_label_is_the_template_and_an_unknown_path_is_unmatched(service: Any) -> None:
    _, client = service
    before = scrape(client)
    assert client.get("/outbox/some-item-that-is-not-there").status_code == 404
    assert client.get("/no/such/place/Patient-77").status_code == 404
    assert client.open("/protocols", method="BREW").status_code == 405
    after = scrape(client)

    def grew(**labels: str) -> float:
        name = "fhir_migraine_http_request_duration_seconds_count"
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew(route="/outbox/<item_id>", method="GET", status_class="4xx") == 1
    assert grew(route="unmatched", method="GET", status_class="4xx") == 1
    assert grew(route="unmatched", method="other", status_class="4xx") == 1
    routes = {dict(labels).get("route") for (_, labels) in after}
    assert not any(r and ("some-item" in r or "Patient-77" in r) for r in routes)


def test_no_patient_identifier_id_or_token_appears_in_the_metrics(service: Any) -> None:
    app, client = service
    secrets = {"Patient/secret-patient-987", "secret-patient-987", "MRN-SECRET-4711", "urn:oid:2.16.840.1.999.4711",
               "entry-secret-0042", "a note nobody may read", API_TOKEN, METRICS_TOKEN, PROTOCOLS_TOKEN}
    by_reference = {**MONTH[2], "entry_id": "entry-secret-0042", "patient": {"reference": "Patient/secret-patient-987"},
                    "notes": "a note nobody may read"}
    by_identifier = {**MONTH[3], "patient": {"identifier": {"system": "urn:oid:2.16.840.1.999.4711", "value": "MRN-SECRET-4711"}}}
    ids = []
    for entry in (by_reference, by_identifier):
        posted = client.post("/diary", json=entry)
        assert posted.status_code == 202
        ids.append(posted.get_json()["outbox_id"])
    gateway = services_of(app).gateway
    gateway.ehr.stored["Patient/5"] = {"resourceType": "Patient", "id": "5", "meta": {"versionId": "1"},
                                       "identifier": [{"system": "urn:oid:2.16.840.1.999.4711", "value": "MRN-SECRET-4711"}]}
    for item_id in ids:
        assert gateway.send_now(item_id, wait=10).state == "sent"
        assert client.get(f"/outbox/{item_id}").status_code == 200
    client.get("/patients/Patient%2Fsecret-patient-987/diary")
    client.get("/patients/identifier%3Durn%3Aoid%3A2.16.840.1.999.4711%7CMRN-SECRET-4711/orders")
    client.delete("/diary/entry-secret-0042?patient=Patient/secret-patient-987")
    client.get("/secret-patient-987/MRN-SECRET-4711")
    text = client.get("/metrics", headers=SCRAPER).get_data(as_text=True)
    found = sorted(s for s in [*secrets, *ids] if s in text)
    assert found == [], f"the metrics show {found}"
    # Every label value is one of a few constant words or a route template.
    for (_, labels) in parse(text):
        for name, label in labels:
            if name == "route":
                assert label == "unmatched" or label.startswith("/"), label
            elif name in ("status_class", "method", "state", "interaction"):
                assert re.fullmatch(r"[A-Za-z0-9]+(-[a-z]+)?", label), label
            else:
                assert name == "le", name


def test_the_outbox_gauges_read_the_shared_store(metered: Settings, database: str) -> None:
    """On SQLite and on PostgreSQL, the gauges are what the database holds at the scrape, whichever
    process queued the items."""
    from fhir_migraine.ehr.outbox import Outbox

    app = create_app(replace(metered, database=database, ehr=EhrSettings(url=BASE), worker=WorkerSettings(enabled=False)))
    client = app.test_client()
    outbox = Outbox(database, clock=lambda: time.time() - 120)  # another process, which queued two minutes ago
    part = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    ids = [outbox.add("diary", [part]) for _ in range(3)]
    outbox.claim(30.0)
    outbox.bury(ids[0], {"type": "EhrRejected", "message": "refused", "status": 422})
    samples = scrape(client)
    assert {s: value(samples, "fhir_migraine_outbox_items", state=s) for s in ("pending", "sending", "dead")} == \
        {"pending": 2, "sending": 0, "dead": 1}
    assert value(samples, "fhir_migraine_outbox_readable") == 1
    assert 119 <= value(samples, "fhir_migraine_outbox_oldest_pending_age_seconds") < 180
