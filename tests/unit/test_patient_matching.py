"""Patient matching with a fake EHR: a subject given by identifier (an MRN) is sent as the literal
``Patient/<id>`` of the one Patient carrying it; none found waits (and goes once the patient is
registered), several found is dead naming the count; pull by identifier asks by the literal reference."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine.config import EhrSettings, OutboxSettings, Settings
from fhir_migraine.ehr.gateway import EhrGateway
from fhir_migraine.ehr.patients import find_patient, parse_identifier, resolve
from fhir_migraine.ehr.worker import wait_for
from fhir_migraine.errors import EhrUnavailable, InputError, PatientAmbiguous, PatientUnknown
from tests.conftest import EXAMPLES
from tests.unit.test_gateway import MONTH, FakeEhr

ORDER = json.loads((EXAMPLES / "bundles" / "status-migrainosus.bundle.json").read_text(encoding="utf-8"))
SYSTEM, VALUE = "urn:oid:2.16.840.1.113883.3.9999.1", "MRN123"
MRN = {"identifier": {"system": SYSTEM, "value": VALUE}}


def patient(pid: str, value: str = VALUE, system: str = SYSTEM) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": system, "value": value}]}


class PatientEhr(FakeEhr):
    """The gateway tests' fake EHR that also answers ``Patient?identifier=system|value`` from ``patients``."""

    def __init__(self, *patients: dict[str, Any]) -> None:
        super().__init__()
        self.patients = list(patients)
        self.patient_searches: list[dict[str, str]] = []

    def search(self, resource_type: str, params: dict[str, str]) -> Any:
        assert resource_type == "Patient"
        self.patient_searches.append(params)
        # Like an EHR, it answers with every Patient the token matches, each a search match.
        system, _, value = params["identifier"].partition("|")
        found = [p for p in self.patients
                 if any(i["system"] == system and i["value"] == value for i in p["identifier"])]
        yield {"resourceType": "Bundle", "type": "searchset",
               "entry": [{"resource": p, "search": {"mode": "match"}} for p in found]}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database=str(tmp_path / "patients.sqlite3"), ehr=EhrSettings(url=FakeEhr.base_url, transaction_size=40),
                    # A retry due half a second after a failure: no attempt on a loaded machine outlasts
                    # it, so one drain never retries an item at once (a test's zero wait sees it pending).
                    outbox=OutboxSettings(retry_base=0.5, retry_cap=0.5))


def subjects(bundle: dict[str, Any]) -> list[Any]:
    return [e["resource"]["subject"] for e in bundle["entry"]]


def test_an_mrn_only_order_is_sent_with_the_literal_reference_of_its_one_patient(settings: Settings) -> None:
    ehr = PatientEhr(patient("p1"), patient("p2", value="MRN999"))
    gateway = EhrGateway(settings, ehr)
    item = gateway.push_now(ORDER, wait=10, sleep=lambda s: None)

    assert item.state == "sent"
    assert ehr.patient_searches == [{"identifier": f"{SYSTEM}|{VALUE}"}]
    (sent,) = ehr.transactions
    assert subjects(sent) == [{"reference": "Patient/p1"}] * len(ORDER["entry"])
    assert "MRN123" not in json.dumps(sent), "no reference by the MRN is left in what was sent"
    # What the outbox keeps is the Bundle as queued; the resolution is recorded beside it.
    assert subjects(item.parts[0]) == [MRN] * len(ORDER["entry"])
    summary = gateway.outbox.summary(item.id)
    assert summary is not None and summary["patients_resolved"] == {f"{SYSTEM}|{VALUE}": "Patient/p1"}


def test_no_patient_with_the_mrn_waits_and_goes_once_the_patient_is_registered(settings: Settings) -> None:
    ehr = PatientEhr(patient("p2", value="MRN999"))
    gateway = EhrGateway(settings, ehr)
    item = gateway.push_now(ORDER, wait=0, sleep=lambda s: None)

    assert item.state == "pending" and ehr.transactions == []
    assert item.last_error is not None
    assert item.last_error["type"] == "PatientUnknown" and item.last_error["retryable"] is True
    assert f"no Patient in the EHR has the identifier {SYSTEM}|{VALUE}" in item.last_error["message"]

    ehr.patients.append(patient("p7"))
    item = wait_for(gateway.outbox, item.id, ehr, gateway.policy, deadline=10**12, sleep=lambda s: None)
    assert item.state == "sent"
    assert subjects(ehr.transactions[0]) == [{"reference": "Patient/p7"}] * len(ORDER["entry"])
    assert len(ehr.patient_searches) == 2, "asked again at the next attempt"


def test_several_patients_with_the_mrn_is_dead_naming_the_count(settings: Settings) -> None:
    ehr = PatientEhr(patient("p1"), patient("p2"), patient("p3"))
    item = EhrGateway(settings, ehr).push_now(ORDER, wait=10, sleep=lambda s: None)

    assert item.state == "dead" and ehr.transactions == []
    assert item.last_error is not None and item.last_error["type"] == "PatientAmbiguous"
    assert item.last_error["retryable"] is False
    assert item.last_error["message"].startswith("3 Patients in the EHR have the identifier")


def test_every_part_of_an_item_names_the_patient_found_once(settings: Settings) -> None:
    month = copy.deepcopy(MONTH)
    for entry in month["entry"]:
        entry["resource"]["subject"] = copy.deepcopy(MRN)
    ehr = PatientEhr(patient("p1"))
    item = EhrGateway(settings, ehr).push_now(month, wait=10, sleep=lambda s: None)

    assert item.state == "sent" and item.part_count > 1
    assert len(ehr.patient_searches) == 1
    sent = [s for t in ehr.transactions for s in subjects(t)]
    assert sent == [{"reference": "Patient/p1"}] * len(month["entry"])


def test_literal_subjects_are_sent_as_they_are_without_a_search(settings: Settings) -> None:
    ehr = PatientEhr(patient("p1"))
    item = EhrGateway(settings, ehr).push_now(MONTH, wait=10, sleep=lambda s: None)
    assert item.state == "sent" and ehr.patient_searches == []
    assert [s for t in ehr.transactions for s in subjects(t)] == subjects(MONTH)


def test_a_patient_the_ehr_answers_without_the_identifier_is_not_a_match() -> None:
    class Careless(PatientEhr):  # an EHR that ignores the identifier parameter
        def search(self, resource_type: str, params: dict[str, str]) -> Any:
            yield {"resourceType": "Bundle", "type": "searchset",
                   "entry": [{"resource": p} for p in self.patients]
                   + [{"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}}]}

    ehr = Careless(patient("p1"), patient("p2", value="MRN999"), patient("p3", system="urn:other"))
    assert find_patient(ehr, SYSTEM, VALUE) == "Patient/p1"
    with pytest.raises(PatientUnknown):
        find_patient(ehr, SYSTEM, "MRN000")


def test_only_references_to_the_patient_are_replaced() -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {
        "resourceType": "Observation", "subject": copy.deepcopy(MRN),
        "performer": [{"identifier": {"system": "urn:staff", "value": "S1"}, "type": "Practitioner"}],
        "focus": [{**copy.deepcopy(MRN), "display": "the patient"}],
        "identifier": [{"system": SYSTEM, "value": VALUE}],
    }}]}
    sent, resolved = resolve(PatientEhr(patient("p1")), bundle, {})
    resource = sent["entry"][0]["resource"]
    assert resolved == {f"{SYSTEM}|{VALUE}": "Patient/p1"}
    assert resource["subject"] == {"reference": "Patient/p1"}
    assert resource["focus"] == [{"reference": "Patient/p1", "display": "the patient"}]
    assert resource["performer"] == bundle["entry"][0]["resource"]["performer"]
    assert resource["identifier"] == [{"system": SYSTEM, "value": VALUE}]
    assert bundle["entry"][0]["resource"]["subject"] == MRN, "the Bundle given is not changed"


def test_pull_by_identifier_asks_by_the_literal_reference(settings: Settings) -> None:
    ehr = PatientEhr(patient("p1"))
    gateway = EhrGateway(settings, ehr)
    gateway.pull(f"identifier={SYSTEM}|{VALUE}")
    assert ehr.patient_searches == [{"identifier": f"{SYSTEM}|{VALUE}"}]
    assert ehr.searches and {params["subject"] for _, params in ehr.searches} == {"Patient/p1"}


@pytest.mark.parametrize(("patients", "error"), [((), PatientUnknown), ((patient("a"), patient("b")), PatientAmbiguous)],
                         ids=["none", "several"])
def test_pull_by_an_identifier_no_single_patient_has_asks_nothing_more(settings: Settings, patients: Any,
                                                                        error: type[Exception]) -> None:
    ehr = PatientEhr(*patients)
    with pytest.raises(error):
        EhrGateway(settings, ehr).pull(f"identifier={SYSTEM}|{VALUE}")
    assert ehr.searches == []


@pytest.mark.parametrize("text", ["identifier=", "identifier=urn:x", "identifier=|MRN1", "identifier=urn:x|"])
def test_an_incomplete_identifier_is_an_input_error_naming_the_patient(settings: Settings, text: str) -> None:
    with pytest.raises(InputError) as caught:
        EhrGateway(settings, PatientEhr()).pull(text)
    assert caught.value.problems[0].path == "$.patient"
    assert "identifier=SYSTEM|VALUE" in caught.value.problems[0].message


def test_parse_identifier_splits_at_the_first_bar_and_leaves_references_alone() -> None:
    assert parse_identifier("identifier=http://hospital.example/mrn|A|1") == ("http://hospital.example/mrn", "A|1")
    assert parse_identifier("Patient/123") is None


def test_special_characters_of_an_identifier_are_escaped_in_the_search() -> None:
    ehr = PatientEhr()
    with pytest.raises(PatientUnknown):
        find_patient(ehr, "urn:x", "A|1,2$3")
    assert ehr.patient_searches == [{"identifier": "urn:x|A\\|1\\,2\\$3"}]


def test_a_dead_item_retried_is_matched_afresh(settings: Settings) -> None:
    ehr = PatientEhr(patient("p1"))
    gateway = EhrGateway(settings, ehr)
    item_id = gateway.queue(ORDER)
    item = gateway.outbox.claim(60)
    assert item is not None
    gateway.outbox.record_resolved(item_id, {f"{SYSTEM}|{VALUE}": "Patient/gone"})
    gateway.outbox.bury(item_id, {"type": "EhrRejected", "message": "Patient/gone does not exist", "retryable": False})
    gateway.outbox.revive(item_id)

    item = wait_for(gateway.outbox, item_id, ehr, gateway.policy, deadline=10**12, sleep=lambda s: None)
    assert item.state == "sent"
    assert subjects(ehr.transactions[0]) == [{"reference": "Patient/p1"}] * len(ORDER["entry"])
    assert item.history[0]["patients_resolved"] == {f"{SYSTEM}|{VALUE}": "Patient/gone"}


def test_a_later_item_naming_the_resolved_patient_by_reference_waits_for_the_mrn_item(settings: Settings) -> None:
    ehr = PatientEhr(patient("p1"))
    ehr.errors.append(EhrUnavailable("down for a moment"))
    gateway = EhrGateway(settings, ehr)
    first = gateway.push_now(ORDER, wait=0, sleep=lambda s: None)
    assert first.state == "pending" and first.resolved == {f"{SYSTEM}|{VALUE}": "Patient/p1"}
    assert "Patient/p1" in first.patients

    later = copy.deepcopy(MONTH)
    for entry in later["entry"]:
        entry["resource"]["subject"] = {"reference": "Patient/p1"}
    later_id = gateway.queue(later)
    assert gateway.outbox.claim(60, only=later_id) is None, "held back by the earlier item of the same patient"
    assert wait_for(gateway.outbox, first.id, ehr, gateway.policy, deadline=10**12, sleep=lambda s: None).state == "sent"
    assert gateway.outbox.claim(60, only=later_id) is not None
