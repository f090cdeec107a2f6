"""Prefetch templates rendered with a call's context, and what the EHR did not send fetched from
its fhirServer with the token it gave (``ehr.cds_fetch``)."""

from __future__ import annotations

from datetime import date

import pytest

from fhir_migraine.ehr import cds_fetch
from tests.cdshooks import FakeServer, bundle

TODAY = date(2026, 12, 2)
CONTEXT = {"patientId": "p 1/2", "userId": "Practitioner/dr-1", "encounterId": "enc-9"}


@pytest.mark.parametrize(("template", "rendered"), [
    ("Patient/{{context.patientId}}", "Patient/p%201%2F2"),
    ("Encounter/{{context.encounterId}}", "Encounter/enc-9"),
    ("Practitioner/{{userPractitionerId}}", "Practitioner/dr-1"),
    ("Observation?patient={{context.patientId}}&date=ge{{today-30}}", "Observation?patient=p%201%2F2&date=ge2026-11-02"),
    ("Observation?date=le{{ today }}", "Observation?date=le2026-12-02"),
], ids=["patient", "encounter", "practitioner", "days-back", "today-spaced"])
def test_a_template_is_filled_with_the_contexts_values_url_encoded(template: str, rendered: str) -> None:
    assert cds_fetch.render(template, CONTEXT, today=TODAY) == rendered


@pytest.mark.parametrize("template", [
    "Encounter/{{context.appointmentId}}",
    "PractitionerRole/{{userPractitionerRoleId}}",
    "Observation?code={{context.patientId.name}}",
    "Observation?x={{unknownToken}}",
], ids=["absent-field", "user-of-another-type", "not-a-field", "unknown-token"])
def test_a_template_with_a_token_without_value_is_not_queried(template: str) -> None:
    assert cds_fetch.render(template, CONTEXT, today=TODAY) is None


def test_a_context_field_that_is_not_text_has_no_value() -> None:
    assert cds_fetch.render("Patient/{{context.patientId}}", {"patientId": {"id": "1"}}, today=TODAY) is None


def test_sent_keys_are_kept_missing_ones_fetched_and_pages_gathered() -> None:
    first = {**bundle({"resourceType": "Condition", "id": "c1"}), "link": []}
    routes = {"/fhir/Patient/p1": {"resourceType": "Patient", "id": "p1"},
              "/fhir/Condition?patient=p1": first,
              "/fhir/Condition?page=2": bundle({"resourceType": "Condition", "id": "c2"})}
    templates = {"patient": "Patient/{{context.patientId}}", "conditions": "Condition?patient={{context.patientId}}",
                 "sent": "Observation?patient={{context.patientId}}", "encounter": "Encounter/{{context.encounterId}}"}
    sent = bundle({"resourceType": "Observation", "id": "o1"})
    with FakeServer(routes).running() as server:
        first["link"] = [{"relation": "next", "url": f"{server.url}/fhir/Condition?page=2"}]
        found = cds_fetch.complete(templates, {"sent": sent}, {"patientId": "p1"}, today=TODAY,
                                   client=lambda: cds_fetch.client_for(f"{server.url}/fhir", "tok", timeout=5))
    assert found["sent"] is sent
    assert found["patient"] == {"resourceType": "Patient", "id": "p1"}
    assert [e["resource"]["id"] for e in found["conditions"]["entry"]] == ["c1", "c2"]
    assert "link" not in found["conditions"]
    assert found["encounter"] is None  # no encounterId in the context: not queried
    assert sorted(s.path for s in server.seen) == ["/fhir/Condition?page=2", "/fhir/Condition?patient=p1", "/fhir/Patient/p1"]
    assert {s.headers["Authorization"] for s in server.seen} == {"Bearer tok"}


def test_without_a_fhir_server_every_missing_key_is_none() -> None:
    found = cds_fetch.complete({"patient": "Patient/{{context.patientId}}"}, {}, {"patientId": "p1"}, client=None,
                               today=TODAY)
    assert found == {"patient": None}


def test_a_slow_fhir_server_leaves_the_key_none_within_the_timeout() -> None:
    with FakeServer({"/fhir/Patient/p1": {"resourceType": "Patient", "id": "p1"}}, delay=2.0).running() as server:
        found = cds_fetch.complete({"patient": "Patient/{{context.patientId}}"}, {}, {"patientId": "p1"}, today=TODAY,
                                   client=lambda: cds_fetch.client_for(f"{server.url}/fhir", None, timeout=0.5))
    assert found == {"patient": None}
