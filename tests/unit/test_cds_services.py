"""The three CDS services: discovery entries, order-select suggestions that validate against the
profiles, patient-view figures, the protocol rules of order-sign, and bad input."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_migraine import operations
from fhir_migraine.cds import services
from fhir_migraine.errors import InputError, NotFound
from fhir_migraine.inputs.diary_files import Located
from fhir_migraine.inputs.orders import finder
from fhir_migraine.library import read_protocols
from tests.conftest import EXAMPLES
from tests.unit.cds_fixtures import NOW, bundle, condition, observation, patient, prefetch, request, sign_request, taken

PROTOCOLS = read_protocols(EXAMPLES / "protocols")
FIND = finder(PROTOCOLS)


def test_discovery_lists_the_three_services_with_standard_prefetch_tokens_only() -> None:
    assert {(s["id"], s["hook"]) for s in services.SERVICES} == {
        ("migraine-order-select", "order-select"), ("migraine-order-sign", "order-sign"),
        ("migraine-patient-view", "patient-view")}
    for entry in services.SERVICES:
        assert entry["title"] and entry["description"]
        for template in entry["prefetch"].values():
            assert set(re.findall(r"\{\{([^}]*)\}\}", template)) == {"context.patientId"}


def select_request(*selected: dict[str, Any]) -> dict[str, Any]:
    return {"hook": "order-select", "hookInstance": "5e1ec700-0000-4000-8000-000000000002",
            "context": {"userId": "Practitioner/1", "patientId": "p1",
                        "selections": [f"{r['resourceType']}/{r['id']}" for r in selected],
                        "draftOrders": bundle(*selected)}}


def select(*selected: dict[str, Any], weight: float | None = 70) -> list[dict[str, Any]]:
    observations = bundle(observation("29463-7", weight, unit="kg")) if weight is not None else bundle()
    return services.answer(services.ORDER_SELECT, select_request(*selected),
                           {"patient": patient(), "observations": observations}, now=NOW,
                           protocols=FIND, protocol_ids=sorted(PROTOCOLS))["cards"]


def test_order_select_offers_the_protocols_using_the_selected_drug_as_valid_draft_orders() -> None:
    found = select(request("valproate", 1000))
    assert [c["source"]["url"].rsplit("/", 1)[1] for c in found] == ["valproate-weight-based"]
    actions = found[0]["suggestions"][0]["actions"]
    kinds = sorted(a["resource"]["resourceType"] for a in actions)
    assert kinds[-1] == "RequestGroup" and set(kinds[:-1]) == {"MedicationRequest"}
    for action in actions:
        assert action["type"] == "create" and action["resource"]["status"] == "draft"
        outcome = operations.validate(action["resource"])
        assert not [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")], json.dumps(outcome)[:2000]
    # 15 mg/kg for 70 kg is 1050 mg, limited to the protocol's max_dose 1000 mg.
    assert "1000 mg" in json.dumps(actions)


def test_order_select_on_a_migraine_diagnosis_offers_every_active_protocol() -> None:
    diagnosis = {**condition("G43.909"), "id": "c1"}
    found = select(diagnosis)
    assert len(found) == len([p for p in PROTOCOLS.values() if p.status == "active"])


def test_order_select_without_a_weight_says_a_per_kg_protocol_cannot_be_offered() -> None:
    found = select(request("valproate", 1000), weight=None)
    assert [c["indicator"] for c in found] == ["warning"] and "suggestions" not in found[0]


def test_order_select_of_an_unrelated_order_offers_nothing() -> None:
    assert select(request("amoxicillin", 500)) == []


def test_order_sign_flags_a_dose_above_the_protocols_max_dose_with_a_fix() -> None:
    draft = request("ketorolac", 60)
    draft["instantiatesCanonical"] = ["https://fhir-migraine.org/fhir/PlanDefinition/ed-migraine-rescue|1.0"]
    draft["identifier"] = [{"system": "https://fhir-migraine.org/fhir/sid/order-step", "value": "o1/nsaid"}]
    found = services.answer(services.ORDER_SIGN, sign_request(draft), prefetch(), now=NOW, protocols=FIND)["cards"]
    above = [c for c in found if "max_dose" in c["summary"]]
    assert [c["indicator"] for c in above] == ["critical"]
    assert above[0]["source"]["url"] == "https://fhir-migraine.org/fhir/PlanDefinition/ed-migraine-rescue"
    assert above[0]["suggestions"][0]["actions"][0]["type"] == "update"
    draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 15
    found = services.answer(services.ORDER_SIGN, sign_request(draft), prefetch(), now=NOW, protocols=FIND)["cards"]
    assert not [c for c in found if "max_dose" in c["summary"]]


def preventive(start: str) -> dict[str, Any]:
    draft = request("eptinezumab", 100, start=start)
    draft["instantiatesCanonical"] = ["https://fhir-migraine.org/fhir/PlanDefinition/eptinezumab-preventive|1.0"]
    draft["identifier"] = [{"system": "https://fhir-migraine.org/fhir/sid/order-step", "value": "o2/infusion"}]
    return draft


def test_a_preventive_infusion_sooner_than_the_protocols_interval_is_a_warning() -> None:
    last = bundle(taken("eptinezumab", "2026-10-15T09:00:00Z", "MedicationAdministration"))
    found = services.answer(services.ORDER_SIGN, sign_request(preventive("2026-12-02T09:00:00Z")),
                            prefetch(administrations=last), now=NOW, protocols=FIND)["cards"]
    assert [c["indicator"] for c in found if "interval" in c["summary"]] == ["warning"]
    long_ago = bundle(taken("eptinezumab", "2026-08-15T09:00:00Z", "MedicationAdministration"))
    found = services.answer(services.ORDER_SIGN, sign_request(preventive("2026-12-02T09:00:00Z")),
                            prefetch(administrations=long_ago), now=NOW, protocols=FIND)["cards"]
    assert not [c for c in found if "interval" in c["summary"]]


def diary_prefetch(mapped: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the EHR answers the patient-view prefetch with for a mapped diary: its Observations
    (category survey) and MedicationStatements; not its QuestionnaireResponses."""
    month = mapped or json.loads((EXAMPLES / "diary" / "month.bundle.json").read_text())
    resources = [e["resource"] for e in month["entry"]]
    return {"patient": patient("female"),
            "diary": bundle(*[r for r in resources if r["resourceType"] == "Observation"]),
            "statements": bundle(*[r for r in resources if r["resourceType"] == "MedicationStatement"])}


def view_request() -> dict[str, Any]:
    return {"hook": "patient-view", "hookInstance": "0e1e0000-0000-4000-8000-000000000003",
            "context": {"userId": "Practitioner/1", "patientId": "p1"}}


def test_patient_view_shows_the_last_30_days_of_the_diary_and_the_smart_link() -> None:
    found = services.answer(services.PATIENT_VIEW, view_request(), diary_prefetch(),
                            now=datetime(2026, 11, 16, 23, 0, tzinfo=UTC), app_url="https://app.example/smart/launch")
    assert len(found["cards"]) == 1
    card = found["cards"][0]
    # The example month by hand (tests/unit/test_diary_summary.py): 8 headache days, 6 acute-medication days.
    assert "8 headache days, 6 acute-medication days" in card["summary"]
    assert card["links"] == [{"label": "Open the migraine diary app", "url": "https://app.example/smart/launch", "type": "smart"}]


def test_patient_view_of_a_month_with_triptan_overuse_is_a_warning_naming_the_class() -> None:
    entries = json.loads((EXAMPLES / "diary" / "overuse.json").read_text(encoding="utf-8"))
    mapped = operations.map_diary([Located(e, f"$[{i}]") for i, e in enumerate(entries)])
    card = services.answer(services.PATIENT_VIEW, view_request(), diary_prefetch(mapped),
                           now=datetime(2026, 10, 31, 23, 0, tzinfo=UTC))["cards"][0]
    # tests/unit/test_diary_summary.py: the example takes a triptan on 11 days of October 2026 (ICHD-3 8.2: 10).
    assert card["indicator"] == "warning"
    assert "triptan on 11 days (ICHD-3 threshold 10)" in card["detail"]


def test_patient_view_with_no_entry_in_the_last_30_days_says_so() -> None:
    card = services.answer(services.PATIENT_VIEW, view_request(), diary_prefetch(),
                           now=datetime(2027, 3, 1, 12, 0, tzinfo=UTC))["cards"][0]
    assert card["indicator"] == "info" and "no entries in the last 30 days" in card["summary"]


def test_patient_view_without_the_diary_says_it_could_not_be_read_and_has_no_link_without_an_app() -> None:
    given = {**diary_prefetch(), "statements": None}
    card = services.answer(services.PATIENT_VIEW, view_request(), given, now=NOW)["cards"][0]
    assert card["indicator"] == "warning" and "could not be read" in card["summary"] and "links" not in card


@pytest.mark.parametrize(("change", "path"), [
    (lambda r: r.update(context=[]), "$.context"),
    (lambda r: r["context"].update(draftOrders={"resourceType": "Patient"}), "$.context.draftOrders"),
    (lambda r: r["context"]["draftOrders"].update(entry=[{"resource": 5}]), "$.context.draftOrders.entry[0].resource"),
    (lambda r: r["context"]["draftOrders"].update(entry={}), "$.context.draftOrders.entry"),
    (lambda r: r.update(hook="patient-view"), "$.hook"),
], ids=["context-not-object", "draft-orders-not-bundle", "entry-not-resource", "entry-not-array", "wrong-hook"])
def test_a_context_that_breaks_the_hooks_contract_is_an_input_error_naming_its_path(change: Any, path: str) -> None:
    body = sign_request(request("ketorolac", 15))
    change(body)
    with pytest.raises(InputError) as raised:
        services.answer(services.ORDER_SIGN, body, prefetch(), now=NOW)
    assert [p.path for p in raised.value.problems] == [path]


def test_a_prefetch_that_is_not_a_resource_is_an_input_error_and_an_unknown_service_not_found() -> None:
    with pytest.raises(InputError) as raised:
        services.answer(services.ORDER_SIGN, sign_request(), prefetch(conditions=[1]), now=NOW)
    assert [p.path for p in raised.value.problems] == ["$.prefetch.conditions"]
    with pytest.raises(NotFound):
        services.answer("no-such-service", sign_request(), {}, now=NOW)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=12)
FIELDS = st.sampled_from(["status", "medicationCodeableConcept", "dosageInstruction", "authoredOn", "id",
                          "medicationReference", "contained", "instantiatesCanonical", "identifier"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(FIELDS, JSON, max_size=5), max_size=3), st.lists(JSON, max_size=2))
def test_generated_draft_orders_never_raise_anything_but_input_error(drafts: list[dict[str, Any]], junk: list[Any]) -> None:
    base = [copy.deepcopy(request("ketorolac", 30)), copy.deepcopy(request("dihydroergotamine", 1, rid="d2"))]
    resources = [{**b, **d} for b, d in zip(base, drafts, strict=False)]
    body = sign_request(*resources)
    body["context"]["draftOrders"]["entry"] += [{"resource": j} for j in junk]
    given_prefetch = prefetch(patient=patient("female", "1950-01-01"),
                              statements=bundle(taken("sumatriptan", "2026-12-02T02:00:00Z"), *resources))
    try:
        found = services.answer(services.ORDER_SIGN, body, given_prefetch, now=NOW, protocols=FIND)
    except InputError:
        return
    assert all(len(c["summary"]) < 140 and c["indicator"] in ("info", "warning", "critical") for c in found["cards"])


def valid_prefetch() -> dict[str, Any]:
    return {
        "patient": patient("female", "1990-03-04"),
        "observations": bundle(observation("29463-7", 48, unit="kg"), observation("62238-1", 50, unit="mL/min/{1.73_m2}"),
                               observation("8636-3", 470, unit="ms"), observation("2106-3", "NEG", "2026-11-20T08:00:00Z")),
        "conditions": bundle(condition("I25.10"), condition("G43.409")),
        "medicationRequests": bundle(request("clarithromycin", 500, status="active", rid="o1"),
                                     request("ondansetron", 4, status="active", rid="o2")),
        "administrations": bundle(taken("ketorolac", "2026-11-29T08:00:00Z", "MedicationAdministration")),
        "statements": bundle(taken("sumatriptan", "2026-12-02T02:00:00Z"), taken("aspirin", "2026-12-02T03:00:00Z")),
    }


FIELDS_OF_PREFETCH = st.sampled_from(["birthDate", "gender", "status", "code", "valueQuantity", "valueCodeableConcept",
                                      "effectiveDateTime", "effectivePeriod", "issued", "interpretation", "clinicalStatus",
                                      "verificationStatus", "medicationCodeableConcept", "medicationReference", "contained",
                                      "dosage", "dosageInstruction", "authoredOn", "resourceType"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_whatever_the_ehr_prefetches_order_sign_answers_cards(data: st.DataObject) -> None:
    """Each prefetched resource, valid at first, with some of its fields replaced by any JSON."""
    given_prefetch = valid_prefetch()
    for key, found in given_prefetch.items():
        resources = [found] if key == "patient" else [e["resource"] for e in found["entry"]]
        for resource in resources:
            resource.update(data.draw(st.dictionaries(FIELDS_OF_PREFETCH, JSON, max_size=2), label=key))
        if key != "patient" and data.draw(st.booleans(), label=f"{key} entry junk"):
            found["entry"].append(data.draw(JSON, label=f"{key} entry"))
    drafts = [request("ketorolac", 30), request("dihydroergotamine", 1, rid="d2"), request("valproate", 500, rid="d3")]
    try:
        found = services.answer(services.ORDER_SIGN, sign_request(*drafts), given_prefetch, now=NOW, protocols=FIND)
    except InputError as exc:  # only a prefetched value that is no resource at all is refused
        assert [p.path for p in exc.problems] == ["$.prefetch.patient"]
        return
    assert all(c["indicator"] in ("info", "warning", "critical") for c in found["cards"])
    assert found["cards"]  # the drafts call for several rules; at least one always answers


def test_a_draft_claiming_the_projects_profile_is_checked_even_when_it_no_longer_conforms() -> None:
    draft = request("dihydroergotamine", 1)
    draft["meta"] = {"profile": ["https://fhir-migraine.org/fhir/StructureDefinition/migraine-infusion-request"]}
    found = services.answer(services.ORDER_SIGN, sign_request(draft),
                            prefetch(conditions=bundle(condition("I25.10"))), now=NOW)["cards"]
    assert [c["indicator"] for c in found] == ["critical"]


def test_order_select_suggestion_resources_carry_ids_and_reference_each_other_by_them() -> None:
    actions = select(request("ketorolac", 15))[0]["suggestions"][0]["actions"]
    ids = {f"{a['resource']['resourceType']}/{a['resource']['id']}" for a in actions}
    text = json.dumps(actions)
    assert "urn:uuid:" not in text
    group = next(a["resource"] for a in actions if a["resource"]["resourceType"] == "RequestGroup")
    targets = {action["resource"]["reference"] for action in group["action"]}
    assert targets and targets <= ids


@pytest.mark.parametrize("selections", [None, "MedicationRequest/d1", [1]], ids=["missing", "string", "not-strings"])
def test_order_select_without_selections_as_an_array_of_strings_is_an_input_error(selections: Any) -> None:
    body = select_request(request("valproate", 1000))
    body["context"]["selections"] = selections
    with pytest.raises(InputError) as raised:
        services.answer(services.ORDER_SELECT, body, {"patient": patient(), "observations": bundle()}, now=NOW,
                        protocols=FIND, protocol_ids=sorted(PROTOCOLS))
    assert [p.path for p in raised.value.problems] == ["$.context.selections"]


def test_order_select_suggestion_carries_the_detected_issues_its_requests_name() -> None:
    # DHE repeated is given off-label with an approval: each MedicationRequest names the order's
    # DetectedIssue, which the suggestion creates with them, so no reference is left dangling.
    cards = select(request("dihydroergotamine", 1))
    [dhe] = [c for c in cards if c["source"]["url"].rstrip("/").endswith("/dhe-repeat")]
    resources = [a["resource"] for a in dhe["suggestions"][0]["actions"]]
    created = {f"{r['resourceType']}/{r['id']}" for r in resources}
    named = {d["reference"] for r in resources if r["resourceType"] == "MedicationRequest" for d in r.get("detectedIssue", [])}
    assert named, "the DHE protocol's requests name a DetectedIssue"
    assert named <= created
    for issue in (r for r in resources if r["resourceType"] == "DetectedIssue"):
        assert {i["reference"] for i in issue.get("implicated", [])} <= created
