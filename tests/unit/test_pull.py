"""A pull through the gateway and the real FHIR client over a fake HTTP layer: the cursor comes
from the EHR's clock (the first page's ``meta.lastUpdated``, else the ``Date`` header, less the
overlap), and a resource of ours that cannot be read back is reported while the rest unmaps."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest

from fhir_migraine import operations
from fhir_migraine.config import EhrSettings, PullSettings, Settings
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.ehr.gateway import EhrGateway, client_from_settings
from fhir_migraine.errors import ConfigError
from fhir_migraine.identifiers import DIARY_SYSTEM
from fhir_migraine.mapping.fhir import identifiers
from tests.fakehttp import BASE, MONTH, PATIENT, RESCUE, VALPROATE, FakeEhrSession, Fault, observations


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database=str(tmp_path / "pull.sqlite3"), ehr=EhrSettings(url=BASE))


def gateway(settings: Settings, session: FakeEhrSession) -> EhrGateway:
    return EhrGateway(settings, FhirClient(BASE, session=session))


def first_requests(session: FakeEhrSession) -> list[str]:
    """The URL of every first request of a search (not a next page, not the read of ``/metadata``)."""
    return [s.url for s in session.sent if "_page=" not in s.url and not s.url.endswith("/metadata")]


def searched_since(session: FakeEhrSession) -> set[str]:
    """The ``_lastUpdated`` of every first request of a search."""
    firsts = first_requests(session)
    return {part for url in firsts for part in url.split("?")[1].split("&") if part.startswith("_lastUpdated=")}


def test_the_cursor_is_the_first_pages_last_updated_less_the_overlap(settings: Settings) -> None:
    session = FakeEhrSession(observations(3, DIARY_SYSTEM, PATIENT), last_updated="2026-11-30T10:00:00.000Z")
    pulls = gateway(settings, session)
    first = pulls.pull(PATIENT, cursor=True)
    assert first["meta"]["lastUpdated"] == "2026-11-30T10:00:00.000Z"
    assert searched_since(session) == set(), "the first cursor pull asks for everything"
    assert pulls.cursors.get(PATIENT) == "2026-11-30T09:59:00.000Z"
    session.sent.clear()
    pulls.pull(PATIENT, cursor=True)
    assert searched_since(session) == {"_lastUpdated=ge2026-11-30T09%3A59%3A00.000Z"}
    assert len(first_requests(session)) == 7, "every search asked from the cursor"


def test_a_last_updated_with_an_offset_is_turned_to_utc(settings: Settings) -> None:
    session = FakeEhrSession(observations(1, DIARY_SYSTEM, PATIENT), last_updated="2026-11-30T11:30:00+01:00")
    pulls = gateway(replace(settings, pull=PullSettings(cursor_overlap=0)), session)
    pulls.pull(PATIENT, cursor=True)
    assert pulls.cursors.get(PATIENT) == "2026-11-30T10:30:00.000Z"


def test_without_last_updated_the_cursor_comes_from_the_date_header(settings: Settings) -> None:
    session = FakeEhrSession(observations(3, DIARY_SYSTEM, PATIENT), last_updated=None,
                             date="Mon, 30 Nov 2026 10:00:05 GMT")
    pulls = gateway(replace(settings, pull=PullSettings(cursor_overlap=5)), session)
    bundle = pulls.pull(PATIENT, cursor=True)
    assert bundle["meta"]["lastUpdated"] == "2026-11-30T10:00:05.000Z"
    assert pulls.cursors.get(PATIENT) == "2026-11-30T10:00:00.000Z"


def test_a_pull_without_the_ehrs_time_leaves_the_cursor_where_it_was(settings: Settings) -> None:
    told = FakeEhrSession(observations(1, DIARY_SYSTEM, PATIENT), last_updated="2026-11-30T10:00:00Z")
    pulls = gateway(settings, told)
    pulls.pull(PATIENT, cursor=True)
    silent = FakeEhrSession(observations(1, DIARY_SYSTEM, PATIENT), last_updated=None, date=None)
    again = gateway(settings, silent)
    bundle = again.pull(PATIENT, cursor=True)
    assert "meta" not in bundle
    assert again.cursors.get(PATIENT) == "2026-11-30T09:59:00.000Z", "never the local clock"
    assert searched_since(silent) == {"_lastUpdated=ge2026-11-30T09%3A59%3A00.000Z"}


def test_a_pull_waits_out_a_429_and_resumes_at_the_page_that_failed(settings: Settings) -> None:
    session = FakeEhrSession(observations(5, DIARY_SYSTEM, PATIENT), faults={6: Fault(429, {"Retry-After": "2"})})
    settings = replace(settings, ehr=replace(settings.ehr, max_count=2))  # pages of two
    sleeps: list[float] = []
    bundle = EhrGateway(settings, FhirClient(BASE, session=session), sleep=sleeps.append).pull(PATIENT)
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ["1", "2", "3", "4", "5"]
    assert sleeps == [2.0]
    # The statement read, three searches of one page each, then the diary search: its second page
    # failed and was asked again; then the medication statements', questionnaire responses' and
    # reports' searches.
    assert session.sent[0].url == f"{BASE}/metadata"
    assert session.sent[5].url == session.sent[6].url and "_offset=2" in session.sent[6].url
    assert len(session.sent) == 11
    assert all("_count=2" in url for url in first_requests(session))


def test_a_resource_the_ehr_gives_without_our_identifier_is_left_out(settings: Settings) -> None:
    ours = observations(2, DIARY_SYSTEM, PATIENT)
    theirs = [{**o, "id": f"x{o['id']}", "identifier": [{"system": "urn:other", "value": "1"}]} for o in ours]

    class IgnoresIdentifier(FakeEhrSession):
        def _search(self, kind, query):  # an EHR without identifier search ignores the parameter
            return super()._search(kind, {k: v for k, v in query.items() if k != "identifier"})

    bundle = gateway(settings, IgnoresIdentifier(ours + theirs)).pull(PATIENT)
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ["1", "2"]


def test_an_operation_outcome_in_a_searchset_is_not_a_match(settings: Settings) -> None:
    class Warns(FakeEhrSession):
        def _page(self, token, offset):
            answer = super()._page(token, offset)
            body = answer.json()
            body["entry"].append({"resource": {"resourceType": "OperationOutcome", "issue": []},
                                  "search": {"mode": "outcome"}})
            answer._content = json.dumps(body).encode()
            return answer

    bundle = gateway(settings, Warns(observations(2, DIARY_SYSTEM, PATIENT))).pull(PATIENT)
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == ["Observation", "Observation"]


def test_one_step_that_cannot_be_read_is_reported_while_the_rest_unmaps(settings: Settings) -> None:
    broken = copy.deepcopy(RESCUE)
    step = next(r for r in broken if r["resourceType"] == "MedicationRequest")
    del step["groupIdentifier"], step["meta"]  # no profile claimed, so it passes validation
    bad_day = {**copy.deepcopy(MONTH[0]), "id": "999", "identifier": [{"system": DIARY_SYSTEM, "value": "not a key"}]}
    del bad_day["meta"]
    session = FakeEhrSession(MONTH + broken + VALPROATE + [bad_day])
    found = gateway(settings, session).pull_unmapped(PATIENT)
    expected = operations.unmap_pulled(gateway(settings, FakeEhrSession(MONTH + VALPROATE)).pull(PATIENT))
    assert found["diary"] == expected["diary"] and len(found["diary"]) > 20
    assert [o["order_id"] for o in found["orders"]] == [o["order_id"] for o in expected["orders"]] != []
    order_id = identifiers(step)[0]["value"].split("/")[0]
    reported = {i.get("order_id") or i.get("entry_id"): i["problem"] for i in found["incomplete"]}
    assert set(reported) == {order_id, "not a key"}
    assert f"MedicationRequest/{step['id']}" in reported[order_id] and "groupIdentifier" in reported[order_id]
    assert found["resources"] == len(MONTH) + len(broken) + len(VALPROATE) + 1


ENTRY_ID = identifiers(MONTH[2])[0]["value"]  # a day with an attack, a medication and a drink
ORDER_AND_DAY = RESCUE + [r for r in MONTH if identifiers(r)[0]["value"].split("/")[0] == ENTRY_ID]
ELEMENTS = [(r["resourceType"], n, key, change) for n, r in enumerate(ORDER_AND_DAY) for key in r
            if key not in ("resourceType", "id", "meta") for change in ("missing", "a-string")]


@pytest.mark.parametrize(("kind", "index", "key", "change"), ELEMENTS, ids=[f"{k}{i}-{e}-{c}" for k, i, e, c in ELEMENTS])
def test_a_resource_with_any_element_missing_or_mistyped_never_fails_the_unmapping(kind: str, index: int, key: str,
                                                                                    change: str) -> None:
    resources = copy.deepcopy(ORDER_AND_DAY)
    del resources[index]["meta"]  # no profile claimed: only the base spec is checked
    if change == "missing":
        del resources[index][key]
    else:
        resources[index][key] = "x"
    searchset = {"resourceType": "Bundle", "type": "searchset",
                 "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r} for r in resources]}
    found = operations.unmap_pulled(searchset)
    accounted = ({o["order_id"] for o in found["orders"]} | {e["entry_id"] for e in found["diary"]}
                 | {i.get("order_id") or i.get("entry_id") for i in found["incomplete"]})
    assert {identifiers(RESCUE[0])[0]["value"].split("/")[0], ENTRY_ID} <= accounted, found["incomplete"]


def test_a_plain_http_gateway_origin_to_another_host_is_a_config_error(settings: Settings) -> None:
    plain = replace(settings, ehr=replace(settings.ehr, gateway_origin="http://fhir-gateway.example"))
    with pytest.raises(ConfigError, match="FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN"):
        client_from_settings(plain)
    secure = replace(settings, ehr=replace(settings.ehr, gateway_origin="https://fhir-gateway.example"))
    client = client_from_settings(secure)
    assert isinstance(client, FhirClient) and "https://fhir-gateway.example:443" in client.origins
