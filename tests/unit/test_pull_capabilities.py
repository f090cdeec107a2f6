"""A pull asks only what the EHR's CapabilityStatement offers: ``patient`` or ``subject``, and
``identifier`` and ``_lastUpdated`` where listed, checking the rest on the client; a type of ours it
cannot search by patient is refused before anything is searched; without a statement nothing changes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_migraine.config import EhrSettings, Settings
from fhir_migraine.ehr.capabilities import Capabilities, read_capabilities
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.ehr.gateway import EhrGateway
from fhir_migraine.ehr.interface import Page
from fhir_migraine.ehr.pull import SEARCHES, plan, pull
from fhir_migraine.errors import EhrUnsupported, InputError
from fhir_migraine.identifiers import DIARY_SYSTEM, ORDER_STEP_SYSTEM, ORDER_SYSTEM, ORDER_WEIGHT_SYSTEM, REPORT_SYSTEM
from tests.fakehttp import BASE, PATIENT, RESCUE, FakeEhrSession, observations

DATA = Path(__file__).parent.parent / "data" / "capabilities"
OUR_TYPES = sorted({t for t, _ in SEARCHES})
SINCE = "2026-11-15T00:00:00Z"


def statement(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def with_type(base: dict[str, Any], resource_type: str, *params: str) -> dict[str, Any]:
    """The statement with ``resource_type`` searchable by ``params`` added to its server part."""
    found = copy.deepcopy(base)
    found["rest"][0]["resource"].append({"type": resource_type, "interaction": [{"code": "read"}, {"code": "search-type"}],
                                         "searchParam": [{"name": p, "type": "token"} for p in params]})
    return found


def searches_made(session: FakeEhrSession) -> list[tuple[str, dict[str, str]]]:
    """(type, query) of every first request of a search: not a next page, not the read of ``/metadata``."""
    made = []
    for sent in session.sent:
        parts = urlsplit(sent.url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path.endswith("/metadata") or "_page" in query:
            continue
        made.append((parts.path.rsplit("/", 1)[-1], query))
    return made


def gateway(tmp_path: Path, session: FakeEhrSession) -> EhrGateway:
    settings = Settings(database=str(tmp_path / "pull.sqlite3"), ehr=EhrSettings(url=BASE))
    return EhrGateway(settings, FhirClient(BASE, session=session))


def stamped(resources: list[dict[str, Any]], when: str | None) -> list[dict[str, Any]]:
    """The resources with ``meta.lastUpdated`` set to ``when`` (None: without any)."""
    found = copy.deepcopy(resources)
    for resource in found:
        resource.pop("meta", None)
        if when is not None:
            resource["meta"] = {"lastUpdated": when}
    return found


class Recorded:
    """Pages that record every search and answer each with one empty page."""

    def __init__(self) -> None:
        self.searches: list[tuple[str, dict[str, str]]] = []

    def pages(self, resource_type: str, params: dict[str, str]) -> Iterator[Page]:
        self.searches.append((resource_type, dict(params)))
        yield Page({"resourceType": "Bundle", "type": "searchset", "entry": []}, "Mon, 30 Nov 2026 10:00:05 GMT")


def test_an_oracle_like_ehr_is_searched_by_patient_without_identifier_and_foreign_resources_are_left_out(
        tmp_path: Path) -> None:
    # Oracle Health lists no RequestGroup; one searchable by patient is added so the pull can run.
    oracle = with_type(statement("oracle-like"), "RequestGroup", "patient")
    ours = observations(2, DIARY_SYSTEM, PATIENT) + RESCUE
    theirs = [{**o, "id": f"x{o['id']}", "identifier": [{"system": "urn:other", "value": o["id"]}]}
              for o in observations(3, DIARY_SYSTEM, PATIENT)]
    theirs.append({**copy.deepcopy(RESCUE[0]), "id": "x-order", "identifier": [{"system": "urn:other", "value": "o"}]})
    session = FakeEhrSession(ours + theirs, statement=oracle)
    bundle = gateway(tmp_path, session).pull(PATIENT)
    made = searches_made(session)
    # Oracle-like: no QuestionnaireResponse search by patient, so it is left out with a warning.
    assert [t for t, _ in made] == ["MedicationRequest", "RequestGroup", "Observation", "Observation"]
    assert all(q["patient"] == PATIENT and "subject" not in q and "identifier" not in q for _, q in made)
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert sorted(e["resource"]["id"] for e in matches) == sorted(r["id"] for r in ours)
    assert "QuestionnaireResponse" in bundle["entry"][-1]["resource"]["issue"][0]["diagnostics"]


def test_an_oracle_like_ehr_is_asked_last_updated_where_it_offers_it_and_checked_on_the_client_elsewhere(
        tmp_path: Path) -> None:
    oracle = with_type(statement("oracle-like"), "RequestGroup", "patient")
    session = FakeEhrSession(stamped(RESCUE, "2026-11-01T00:00:00Z"), statement=oracle)
    bundle = gateway(tmp_path, session).pull(PATIENT, since=SINCE)
    asked = {t: q.get("_lastUpdated") for t, q in searches_made(session)}
    assert asked == {"MedicationRequest": f"ge{SINCE}", "RequestGroup": None, "Observation": f"ge{SINCE}"}
    # This fake does not filter by _lastUpdated: what the EHR was asked to filter comes back as it
    # answered, while the RequestGroup, older than since, is dropped on the client.
    kinds = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    assert "RequestGroup" not in kinds and kinds.count("MedicationRequest") == len(RESCUE) - 1


def test_the_oracle_like_statement_as_published_pulls_what_it_can_and_names_what_it_left_out(tmp_path: Path) -> None:
    session = FakeEhrSession(observations(2, DIARY_SYSTEM, PATIENT), statement=statement("oracle-like"))
    bundle = gateway(tmp_path, session).pull(PATIENT)
    assert "RequestGroup" not in {t for t, _ in searches_made(session)}
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    outcomes = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert bundle["total"] == len(matches) == 2
    assert len(outcomes) == 1 and "RequestGroup" in outcomes[0]["issue"][0]["diagnostics"]
    assert "MedicationRequest" not in outcomes[0]["issue"][0]["diagnostics"]
    found = gateway(tmp_path, session).pull_unmapped(PATIENT)
    assert found["resources"] == 2 and len(found["warnings"]) == 1


def test_every_type_that_cannot_be_searched_by_patient_is_left_out_and_none_searchable_is_refused() -> None:
    epic = read_capabilities(statement("epic-like"))  # MedicationRequest by patient, no RequestGroup
    caps = read_capabilities(with_type(statement("epic-like"), "RequestGroup", "_id"))
    for found in (epic, caps):
        pages = Recorded()
        bundle = pull(pages, PATIENT, capabilities=found)
        assert "RequestGroup" not in {t for t, _ in pages.searches}
        # The epic-like statement lists no MedicationStatement either: both are named.
        assert "offers no search of MedicationStatement or RequestGroup by patient or subject" in \
            bundle["entry"][-1]["resource"]["issue"][0]["diagnostics"]
    no_search = read_capabilities(statement("oracle-like"))
    patient_only = no_search.types["Patient"]  # no patient, no subject parameter
    types = no_search.types | {"Observation": patient_only, "MedicationRequest": patient_only}
    pages = Recorded()
    every = "MedicationRequest or MedicationStatement or Observation or QuestionnaireResponse or RequestGroup"
    with pytest.raises(EhrUnsupported, match=every):
        pull(pages, PATIENT, capabilities=Capabilities(no_search.system, types))
    assert pages.searches == [], "refused before any search"


def test_without_last_updated_since_is_checked_on_the_client_keeping_resources_without_a_stamp(
        tmp_path: Path) -> None:
    epic = with_type(with_type(statement("epic-like"), "RequestGroup", "patient", "subject"),
                     "MedicationStatement", "patient", "subject")
    old, new = observations(4, DIARY_SYSTEM, PATIENT)[:2], observations(4, DIARY_SYSTEM, PATIENT)[2:]
    unstamped = [{**o, "id": f"u{o['id']}"} for o in observations(1, DIARY_SYSTEM, PATIENT)]
    odd = [{**o, "id": "odd", "meta": {"lastUpdated": "yesterday"}} for o in observations(1, DIARY_SYSTEM, PATIENT)]
    resources = (stamped(old, "2026-11-14T23:59:59.999Z") + stamped(new, "2026-11-15T01:00:00+01:00")
                 + stamped(unstamped, None) + odd)
    session = FakeEhrSession(resources, statement=epic)
    bundle = gateway(tmp_path, session).pull(PATIENT, since=SINCE)
    assert all("_lastUpdated" not in q and "identifier" not in q and q["patient"] == PATIENT
               for _, q in searches_made(session))
    # 01:00+01:00 is exactly since: kept; no stamp, or one that is not an instant: kept (the safe side).
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == ["3", "4", "odd", "u1"]
    assert len(gateway(tmp_path, FakeEhrSession(resources, statement=epic)).pull(PATIENT)["entry"]) == 6


def test_without_a_statement_the_searches_are_as_they_always_were() -> None:
    pages = Recorded()
    bundle = pull(pages, "123", since=SINCE, count=50)
    systems = {"MedicationRequest": [ORDER_STEP_SYSTEM], "RequestGroup": [ORDER_SYSTEM],
               "Observation": [ORDER_WEIGHT_SYSTEM, DIARY_SYSTEM], "MedicationStatement": [DIARY_SYSTEM],
               "QuestionnaireResponse": [DIARY_SYSTEM], "DocumentReference": [REPORT_SYSTEM]}
    expected = [(t, {"subject": PATIENT, "identifier": f"{s}|", "_count": "50", "_lastUpdated": f"ge{SINCE}"})
                for t in ("MedicationRequest", "RequestGroup", "Observation", "MedicationStatement", "QuestionnaireResponse",
                          "DocumentReference")
                for s in systems[t]]
    assert pages.searches == expected
    assert [list(p) for _, p in pages.searches] == [["subject", "identifier", "_count", "_lastUpdated"]] * 7
    assert bundle["meta"] == {"lastUpdated": "2026-11-30T10:00:05.000Z"}
    assert plan(Capabilities.unknown(), PATIENT) == plan(Capabilities.unknown(), PATIENT, since=None, count=None)
    assert all(s.since is None for s in plan(Capabilities.unknown(), PATIENT, since=SINCE))


def test_a_since_that_is_not_an_instant_is_refused_before_any_search() -> None:
    pages = Recorded()
    with pytest.raises(InputError) as caught:
        pull(pages, PATIENT, since="2026-11-15")
    assert caught.value.problems[0].path == "$.since" and pages.searches == []


PARAMS = ["patient", "subject", "identifier", "_lastUpdated", "_id", "date", "category"]
LISTED = st.fixed_dictionaries({
    "search": st.sampled_from([True, True, True, False]),  # search-type offered, mostly
    "params": st.builds(lambda who, others: who + others,
                        st.sampled_from([[], ["patient"], ["subject"], ["patient", "subject"], ["patient"]]),
                        st.lists(st.sampled_from(["identifier", "_lastUpdated", "_id", "date"]), unique=True)),
})
TYPE_STATEMENT = st.one_of(st.none(), LISTED, LISTED, LISTED, LISTED)  # None: the type is not listed


@settings(max_examples=300, deadline=None)
@given(types=st.fixed_dictionaries({t: TYPE_STATEMENT for t in OUR_TYPES}),
       common=st.lists(st.sampled_from(PARAMS), unique=True, max_size=2), since=st.booleans())
def test_a_pull_never_asks_a_parameter_the_statement_does_not_list(types: dict[str, Any], common: list[str],
                                                                   since: bool) -> None:
    resources = []
    for resource_type, listed in types.items():
        if listed is not None:
            interactions = [{"code": "read"}] + ([{"code": "search-type"}] if listed["search"] else [])
            resources.append({"type": resource_type, "interaction": interactions,
                              "searchParam": [{"name": p, "type": "token"} for p in listed["params"]]})
    rest = {"mode": "server", "resource": resources, "searchParam": [{"name": p, "type": "token"} for p in common]}
    caps = read_capabilities({"resourceType": "CapabilityStatement", "rest": [rest]})
    pages = Recorded()
    try:
        pull(pages, PATIENT, since=SINCE if since else None, capabilities=caps)
    except EhrUnsupported as refused:
        assert pages.searches == [], "refused before any search"
        assert all(caps.patient_param(t) is None and t in refused.message for t in OUR_TYPES)
        return
    searchable = [t for t, _ in SEARCHES if caps.patient_param(t) is not None]
    assert [t for t, _ in pages.searches] == searchable, "every type it can search, and no other"
    for resource_type, params in pages.searches:
        assert set(params) - {"_count"} <= caps.types[resource_type].search_params
        assert ("patient" in params) != ("subject" in params)
        assert ("_lastUpdated" in params) == (since and caps.searches(resource_type, "_lastUpdated"))
        assert ("identifier" in params) == caps.searches(resource_type, "identifier")
