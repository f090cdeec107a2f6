"""Each order-sign rule with a positive and a negative case, on small FHIR resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fhir_migraine import terminology
from fhir_migraine.cds import evaluate, services
from fhir_migraine.cds.context import read
from tests.unit.cds_fixtures import (
    NOW,
    bundle,
    condition,
    long_term,
    observation,
    patient,
    prefetch,
    request,
    sign_request,
    taken,
)


def cards(drafts: list[dict[str, Any]], protocols: Any = None, **given: Any) -> list[dict[str, Any]]:
    return services.answer(services.ORDER_SIGN, sign_request(*drafts), prefetch(**given), now=NOW,
                           protocols=protocols)["cards"]


def rule_cards(rule: str, drafts: list[dict[str, Any]], **given: Any) -> list[dict[str, Any]]:
    found = cards(drafts, **given)
    sources = {r["id"]: r["source"]["url"] for r in evaluate.rules()}
    return [c for c in found if c["source"]["url"] == sources[rule] and rule_matches(rule, c)]


def rule_matches(rule: str, card: dict[str, Any]) -> bool:
    words = {"triptan-ergot-24h": " h of ", "dhe-condition": "contraindicated", "dhe-cyp3a4-inhibitor": "CYP3A4",
             "ketorolac-lower-dose": "label's dose",
             "ketorolac-renal": "renal impairment", "ketorolac-with-nsaid": "NSAID", "ketorolac-5-days": "days, more",
             "valproate-pregnancy-test": "could be pregnant", "qt-prolonging": "QT", "duplicate-class": "Duplicate"}
    return words[rule] in card["summary"]


def test_triptan_taken_in_the_diary_within_24_hours_of_dhe_is_critical() -> None:
    found = rule_cards("triptan-ergot-24h", [request("dihydroergotamine", 1)],
                       statements=bundle(taken("sumatriptan", "2026-12-02T02:00:00Z")))
    assert [c["indicator"] for c in found] == ["critical"]
    assert "sumatriptan" in found[0]["summary"] and "10 h before" in found[0]["summary"]


def test_triptan_ordered_after_dhe_was_given_counts_in_the_other_direction() -> None:
    found = rule_cards("triptan-ergot-24h", [request("sumatriptan", 6, start="2026-12-02T12:00:00Z")],
                       administrations=bundle(taken("dihydroergotamine", "2026-12-02T08:00:00Z", "MedicationAdministration")))
    assert len(found) == 1 and "dihydroergotamine" in found[0]["summary"]


def test_triptan_more_than_24_hours_before_dhe_is_no_card() -> None:
    assert rule_cards("triptan-ergot-24h", [request("dihydroergotamine", 1)],
                      statements=bundle(taken("sumatriptan", "2026-12-01T11:00:00Z"))) == []


def test_dhe_with_clarithromycin_active_is_critical_and_without_is_not() -> None:
    active = bundle(request("clarithromycin", 500, status="active", rid="o1", start="2026-11-30T08:00:00Z"))
    found = rule_cards("dhe-cyp3a4-inhibitor", [request("dihydroergotamine", 1)], medicationRequests=active)
    assert [c["indicator"] for c in found] == ["critical"] and "clarithromycin" in found[0]["summary"]
    stopped = bundle(request("clarithromycin", 500, status="stopped", rid="o1", start="2026-11-30T08:00:00Z"))
    assert rule_cards("dhe-cyp3a4-inhibitor", [request("dihydroergotamine", 1)], medicationRequests=stopped) == []


@pytest.mark.parametrize(("code", "expected"), [("I25.10", "coronary artery disease"), ("I16.0", "uncontrolled hypertension"),
                                                ("O09.90", "pregnancy"), ("G43.409", "hemiplegic or brainstem aura")])
def test_dhe_with_a_contraindicating_condition_is_critical(code: str, expected: str) -> None:
    found = rule_cards("dhe-condition", [request("dihydroergotamine", 1)], conditions=bundle(condition(code)))
    assert [c["indicator"] for c in found] == ["critical"] and expected in found[0]["summary"]


def test_dhe_with_a_resolved_or_unrelated_condition_is_no_card() -> None:
    conditions = bundle(condition("I25.10", status="resolved"), condition("G43.909"))
    assert rule_cards("dhe-condition", [request("dihydroergotamine", 1)], conditions=conditions) == []


def test_dhe_with_a_positive_pregnancy_test_is_critical() -> None:
    found = rule_cards("dhe-condition", [request("dihydroergotamine", 1)],
                       observations=bundle(observation("2106-3", "POS", "2026-12-02T09:00:00Z")))
    assert found and "pregnancy" in found[0]["summary"]


def test_valproate_for_a_woman_of_30_without_a_recent_negative_test_is_critical() -> None:
    woman = patient("female", "1996-01-01")
    old_test = bundle(observation("2106-3", "NEG", "2026-11-27T09:00:00Z"))
    found = rule_cards("valproate-pregnancy-test", [request("valproate", 1000)], patient=woman, observations=old_test)
    assert [c["indicator"] for c in found] == ["critical"] and "72 h" in found[0]["summary"]


def test_valproate_with_a_negative_test_in_72_hours_or_for_a_man_or_a_woman_of_60_is_no_card() -> None:
    recent = bundle(observation("2118-8", "NEG", "2026-12-01T09:00:00Z"))
    assert rule_cards("valproate-pregnancy-test", [request("valproate", 1000)],
                      patient=patient("female", "1996-01-01"), observations=recent) == []
    assert rule_cards("valproate-pregnancy-test", [request("valproate", 1000)], patient=patient("male")) == []
    assert rule_cards("valproate-pregnancy-test", [request("valproate", 1000)], patient=patient("female", "1966-01-01")) == []


@pytest.mark.parametrize(("given", "reason"), [
    ({"patient": patient("male", "1950-01-01")}, "age 76"),
    ({"observations": bundle(observation("29463-7", 45, unit="kg"))}, "weight 45.0 kg"),
    ({"observations": bundle(observation("62238-1", 40, unit="mL/min/{1.73_m2}"))}, "eGFR 40"),
], ids=["age", "weight", "egfr"])
def test_ketorolac_30_mg_for_an_older_light_or_renally_impaired_patient_suggests_15_mg(given: dict[str, Any], reason: str) -> None:
    draft = request("ketorolac", 30)
    found = rule_cards("ketorolac-lower-dose", [draft], **given)
    assert [c["indicator"] for c in found] == ["warning"] and reason in found[0]["summary"]
    action = found[0]["suggestions"][0]["actions"][0]
    assert action["type"] == "update" and action["resource"]["id"] == "d1"
    assert action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 15
    assert found[0]["selectionBehavior"] == "at-most-one"


def test_ketorolac_15_mg_or_a_young_heavy_patient_with_good_egfr_is_no_card() -> None:
    observations = bundle(observation("29463-7", 80, unit="kg"), observation("62238-1", 95, unit="mL/min/{1.73_m2}"))
    assert rule_cards("ketorolac-lower-dose", [request("ketorolac", 30)], observations=observations) == []
    assert rule_cards("ketorolac-lower-dose", [request("ketorolac", 15)], patient=patient("male", "1950-01-01")) == []


def test_ketorolac_with_aspirin_taken_today_is_critical_and_without_is_not() -> None:
    found = rule_cards("ketorolac-with-nsaid", [request("ketorolac", 15)],
                       statements=bundle(taken("aspirin", "2026-12-02T07:00:00Z")))
    assert [c["indicator"] for c in found] == ["critical"] and "aspirin" in found[0]["summary"]
    assert rule_cards("ketorolac-with-nsaid", [request("ketorolac", 15)],
                      statements=bundle(taken("aspirin", "2026-11-25T07:00:00Z"))) == []


def test_ketorolac_on_more_than_5_days_is_a_warning() -> None:
    given = bundle(*[taken("ketorolac", f"2026-11-{d}T08:00:00Z", "MedicationAdministration") for d in (27, 28, 29, 30)])
    draft = request("ketorolac", 15, start="2026-12-01T08:00:00Z", end="2026-12-02T20:00:00Z")
    found = rule_cards("ketorolac-5-days", [draft], administrations=given)
    assert [c["indicator"] for c in found] == ["warning"] and "6 days" in found[0]["summary"]


def test_ketorolac_within_5_days_is_no_card() -> None:
    given = bundle(*[taken("ketorolac", f"2026-11-{d}T08:00:00Z", "MedicationAdministration") for d in (29, 30)])
    assert rule_cards("ketorolac-5-days", [request("ketorolac", 15)], administrations=given) == []


def test_two_qt_prolonging_drugs_ordered_together_is_a_warning() -> None:
    normal = bundle(observation("8636-3", 410, unit="ms"))  # droperidol without a QTc has its own ECG card
    found = rule_cards("qt-prolonging", [request("ondansetron", 4), request("droperidol", 1.25, rid="d2")],
                       observations=normal)
    assert [c["indicator"] for c in found] == ["warning"]  # one card for the pair, not one per drug


def test_one_qt_prolonging_drug_with_a_long_qtc_is_a_warning_and_with_a_normal_qtc_is_not() -> None:
    long_qtc = bundle(observation("8636-3", 470, unit="ms"))
    found = rule_cards("qt-prolonging", [request("haloperidol", 5)], observations=long_qtc)
    assert found and "QTc 470" in found[0]["summary"]
    assert rule_cards("qt-prolonging", [request("haloperidol", 5)],
                      observations=bundle(observation("8636-3", 420, unit="ms"))) == []


def test_two_drugs_of_one_class_in_the_order_set_is_duplicate_therapy() -> None:
    found = rule_cards("duplicate-class", [request("ketorolac", 15), request("ibuprofen", 400, rid="d2")])
    assert len(found) == 1 and "anti-inflammatory" in found[0]["summary"]
    assert rule_cards("duplicate-class", [request("ketorolac", 15), request("dexamethasone", 10, rid="d2")]) == []


def test_a_rule_whose_prefetch_is_missing_says_it_could_not_run() -> None:
    found = cards([request("dihydroergotamine", 1)], conditions=None)
    not_run = [c for c in found if c["summary"].startswith("Check not run: dhe-condition")]
    assert len(not_run) == 1 and not_run[0]["indicator"] == "warning"


def test_the_evaluator_reads_a_new_row_of_a_known_kind() -> None:
    row = {"id": "dhe-with-sumatriptan-order", "kind": "with-drug", "drugs": ["dihydroergotamine"],
           "others": ["propranolol"], "within_days": 1, "needs": [], "indicator": "info",
           "summary": "{drug} with {other}", "detail": "d", "source": {"label": "l", "url": "https://example.org"}}
    drafts = [("$.x", request("dihydroergotamine", 1)), ("$.y", request("propranolol", 40, rid="d2"))]
    found = list(evaluate.evaluate(read(prefetch(), drafts, NOW), table=(row,)))
    assert [(r["id"], f["other"]) for r, f in found if f] == [("dhe-with-sumatriptan-order", "propranolol")]
    assert list(evaluate.evaluate(read(prefetch(), drafts[:1], NOW), table=(row,))) == []


DOC = (Path(__file__).resolve().parents[2] / "docs" / "cds-rules.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("rule", evaluate.rules(), ids=[r["id"] for r in evaluate.rules()])
def test_every_rule_is_a_known_kind_with_a_sourced_card_and_its_own_section_in_the_docs(rule: dict[str, Any]) -> None:
    assert rule["kind"] in evaluate.KINDS
    assert rule["indicator"] in ("info", "warning", "critical")
    assert rule["source"]["label"] and rule["source"]["url"].startswith(("https://", "http://"))
    assert set(rule["needs"]) <= {"patient", "observations", "conditions", "medicationRequests", "administrations",
                                  "statements"}
    assert f"### {rule['id']} ({rule['kind']})" in DOC
    assert rule["source"]["url"] in DOC


def test_a_drug_is_recognised_by_its_rxnorm_code_by_a_brand_name_and_inside_a_bag() -> None:
    by_code = request("dihydroergotamine", 1)
    by_code["medicationCodeableConcept"] = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                        "code": "3418"}]}
    by_brand = request("ketorolac", 15, rid="d2")
    by_brand["medicationCodeableConcept"] = {"text": "Toradol"}
    bag = request("ketorolac", None, rid="d3")
    del bag["medicationCodeableConcept"]
    bag["medicationReference"] = {"reference": "#bag"}
    bag["contained"] = [{"resourceType": "Medication", "id": "bag", "ingredient": [
        {"itemCodeableConcept": {"text": "sodium chloride 0.9%"}, "isActive": False},
        {"itemCodeableConcept": {"text": "magnesium sulfate"}, "isActive": True}]}]
    context = read(prefetch(), [("$.a", by_code), ("$.b", by_brand), ("$.c", bag)], NOW)
    assert [d.key for d in context.drafts] == ["dihydroergotamine", "ketorolac", "magnesium sulfate"]


def test_valproate_with_a_positive_pregnancy_test_after_a_negative_one_is_critical() -> None:
    tests = bundle(observation("2106-3", "NEG", "2026-12-01T08:00:00Z"), observation("2106-3", "POS", "2026-12-02T08:00:00Z"))
    found = rule_cards("valproate-pregnancy-test", [request("valproate", 1000)],
                       patient=patient("female", "1996-01-01"), observations=tests)
    assert found and "positive pregnancy test" in found[0]["summary"]


@pytest.mark.parametrize(("rule", "draft", "drug"), [
    ("dhe-cyp3a4-inhibitor", request("dihydroergotamine", 1), "ritonavir"),
    ("dhe-cyp3a4-inhibitor", request("dihydroergotamine", 1), "clarithromycin"),
    ("ketorolac-with-nsaid", request("ketorolac", 15), "aspirin"),
    ("qt-prolonging", request("droperidol", 1.25), "haloperidol"),
], ids=["ritonavir", "clarithromycin", "aspirin", "qt"])
def test_a_long_term_drug_started_years_ago_and_still_taken_counts_as_current(rule: str, draft: dict[str, Any],
                                                                              drug: str) -> None:
    observations = bundle(observation("8636-3", 400, unit="ms"))
    ongoing = bundle(long_term(drug, "2020-03-01"))
    found = rule_cards(rule, [draft], statements=ongoing, observations=observations)
    assert len(found) == 1 and drug in found[0]["summary"]
    until_next_year = bundle(long_term(drug, "2020-03-01", end="2027-03-01"))
    assert len(rule_cards(rule, [draft], statements=until_next_year, observations=observations)) == 1
    order = bundle(request(drug, 1, status="active", rid="o1", start="2020-03-01T08:00:00Z"))
    assert len(rule_cards(rule, [draft], medicationRequests=order, observations=observations)) == 1


@pytest.mark.parametrize("statement", [
    long_term("ritonavir", "2020-03-01", end="2026-06-01"),
    long_term("ritonavir", "2020-03-01", status="completed"),
    taken("ritonavir", "2020-03-01T08:00:00Z"),
    {**taken("ritonavir", "2020-03-01T08:00:00Z"), "status": "active"},
], ids=["ended", "completed", "single-intake", "single-intake-active"])
def test_a_long_term_drug_that_ended_or_a_single_intake_years_ago_is_not_current(statement: dict[str, Any]) -> None:
    assert rule_cards("dhe-cyp3a4-inhibitor", [request("dihydroergotamine", 1)], statements=bundle(statement)) == []


@pytest.mark.parametrize("gender", ["female", "unknown", "other", None])
def test_valproate_for_a_patient_of_gender_female_unknown_other_or_none_could_be_pregnant(gender: str | None) -> None:
    person = patient("female", "1996-01-01")
    if gender is None:
        del person["gender"]
    else:
        person["gender"] = gender
    found = rule_cards("valproate-pregnancy-test", [request("valproate", 1000)], patient=person)
    assert [c["indicator"] for c in found] == ["critical"]
    assert ("(gender" in found[0]["summary"]) == (gender != "female")


def test_valproate_for_a_man_of_30_is_no_card_and_with_a_negative_test_whatever_the_gender_neither() -> None:
    assert rule_cards("valproate-pregnancy-test", [request("valproate", 1000)], patient=patient("male", "1996-01-01")) == []
    recent = bundle(observation("2106-3", "NEG", "2026-12-02T09:00:00Z"))
    assert rule_cards("valproate-pregnancy-test", [request("valproate", 1000)], patient=patient("other", "1996-01-01"),
                      observations=recent) == []


def test_ketorolac_with_an_egfr_below_30_is_critical_without_a_lower_dose_suggestion() -> None:
    low = bundle(observation("62238-1", 22, unit="mL/min/{1.73_m2}"))
    old = patient("male", "1950-01-01")
    found = rule_cards("ketorolac-renal", [request("ketorolac", 30)], patient=old, observations=low)
    assert [c["indicator"] for c in found] == ["critical"] and "eGFR 22" in found[0]["summary"]
    assert not found[0].get("suggestions")
    assert rule_cards("ketorolac-lower-dose", [request("ketorolac", 30)], patient=old, observations=low) == []


@pytest.mark.parametrize("egfr", [30, 59])
def test_ketorolac_with_an_egfr_of_30_to_59_is_no_critical_card_but_suggests_15_mg(egfr: int) -> None:
    given = bundle(observation("62238-1", egfr, unit="mL/min/{1.73_m2}"))
    assert rule_cards("ketorolac-renal", [request("ketorolac", 30)], observations=given) == []
    found = rule_cards("ketorolac-lower-dose", [request("ketorolac", 30)], observations=given)
    assert len(found) == 1 and f"eGFR {egfr}" in found[0]["summary"] and found[0]["suggestions"]


@pytest.mark.parametrize("name", ["Excedrin Migraine", "acetaminophen/aspirin/caffeine", "aspirin / caffeine"])
def test_ketorolac_with_an_aspirin_containing_combination_taken_today_is_critical(name: str) -> None:
    combination = taken("aspirin", "2026-12-02T07:00:00Z")
    combination["medicationCodeableConcept"] = {"text": name}
    found = rule_cards("ketorolac-with-nsaid", [request("ketorolac", 15)], statements=bundle(combination))
    assert [c["indicator"] for c in found] == ["critical"]


@pytest.mark.parametrize("name", ["acetaminophen", "acetaminophen / caffeine", "Excedrin"])
def test_ketorolac_with_a_drug_without_aspirin_or_a_combination_taken_last_week_is_no_card(name: str) -> None:
    when = "2026-11-25T07:00:00Z" if name == "Excedrin" else "2026-12-02T07:00:00Z"
    other = taken("aspirin", when)
    other["medicationCodeableConcept"] = {"text": name}
    assert rule_cards("ketorolac-with-nsaid", [request("ketorolac", 15)], statements=bundle(other)) == []


def test_a_combination_is_read_by_its_listed_ingredients_or_by_the_parts_of_its_name() -> None:
    assert terminology.drug_ingredients("Excedrin") == ("acetaminophen", "aspirin", "caffeine")
    assert terminology.drug_ingredients("Paracetamol + Caffeine") == ("acetaminophen", "caffeine")
    assert terminology.drug_ingredients("Toradol") == ("ketorolac",)
    assert terminology.drug_ingredients("some new drug") == ("some new drug",)


@pytest.mark.parametrize(("sex", "qtc"), [("male", 445), ("female", 455)])
def test_droperidol_above_the_labels_qtc_is_critical_and_another_qt_drug_a_warning(sex: str, qtc: int) -> None:
    long_qtc = bundle(observation("8636-3", qtc, unit="ms"))
    person = patient(sex)
    found = rule_cards("qt-prolonging", [request("droperidol", 1.25)], patient=person, observations=long_qtc)
    assert [c["indicator"] for c in found] == ["critical"] and f"QTc {qtc}" in found[0]["summary"]
    found = rule_cards("qt-prolonging", [request("ondansetron", 4)], patient=person, observations=long_qtc)
    assert [c["indicator"] for c in found] == ["warning"]


def test_droperidol_for_a_woman_with_a_qtc_of_445_is_no_card() -> None:
    assert rule_cards("qt-prolonging", [request("droperidol", 1.25)], patient=patient("female"),
                      observations=bundle(observation("8636-3", 445, unit="ms"))) == []


def test_droperidol_with_no_qtc_on_record_says_an_ecg_is_needed_and_ondansetron_does_not() -> None:
    found = rule_cards("qt-prolonging", [request("droperidol", 1.25)])
    assert [c["indicator"] for c in found] == ["warning"] and "12-lead ECG" in found[0]["summary"]
    assert rule_cards("qt-prolonging", [request("ondansetron", 4)]) == []


@pytest.mark.parametrize("drug", ["clarithromycin", "erythromycin", "promethazine"])
def test_a_new_qt_drug_taken_with_haloperidol_is_a_warning_and_alone_is_not(drug: str) -> None:
    normal = bundle(observation("8636-3", 410, unit="ms"))
    found = rule_cards("qt-prolonging", [request("haloperidol", 5), request(drug, 25, rid="d2")], observations=normal)
    assert [c["indicator"] for c in found] == ["warning"] and drug in found[0]["summary"]
    assert rule_cards("qt-prolonging", [request(drug, 25)], observations=normal) == []


@pytest.mark.parametrize("name", ["cobicistat", "atazanavir", "darunavir", "lopinavir", "saquinavir", "tipranavir",
                                  "voriconazole", "posaconazole", "nefazodone", "telithromycin", "nirmatrelvir/ritonavir",
                                  "Lopinavir / Ritonavir", "Paxlovid", "Kaletra", "darunavir + cobicistat"])
def test_dhe_with_a_strong_cyp3a4_inhibitor_or_a_combination_containing_one_is_critical(name: str) -> None:
    inhibitor = taken("ritonavir", "2026-11-30T08:00:00Z")
    inhibitor["medicationCodeableConcept"] = {"text": name}
    found = rule_cards("dhe-cyp3a4-inhibitor", [request("dihydroergotamine", 1)], statements=bundle(inhibitor))
    assert [c["indicator"] for c in found] == ["critical"]


@pytest.mark.parametrize("name", ["nirmatrelvir", "fluconazole", "Paxlovid"])
def test_dhe_with_no_strong_inhibitor_or_one_taken_weeks_ago_is_no_card(name: str) -> None:
    other = taken("ritonavir", "2026-11-01T08:00:00Z" if name == "Paxlovid" else "2026-11-30T08:00:00Z")
    other["medicationCodeableConcept"] = {"text": name}
    assert rule_cards("dhe-cyp3a4-inhibitor", [request("dihydroergotamine", 1)], statements=bundle(other)) == []


def test_a_combination_brand_of_the_table_is_read_as_its_ingredients() -> None:
    assert terminology.drug_ingredients("Paxlovid") == ("nirmatrelvir", "ritonavir")
    assert terminology.drug_ingredients("Kaletra") == ("lopinavir", "ritonavir")


def by_route(draft: dict[str, Any], route: str) -> dict[str, Any]:
    draft["dosageInstruction"][0]["route"] = {"coding": [{"system": "http://snomed.info/sct", "display": route}]}
    return draft


@pytest.mark.parametrize(("route", "dose", "limit"), [("Intravenous route", 30, 15), ("Intramuscular route", 60, 30),
                                                      ("IV", 20, 15), ("Oral route", 20, 15)])
def test_ketorolac_for_an_older_patient_is_limited_by_route(route: str, dose: int, limit: int) -> None:
    found = rule_cards("ketorolac-lower-dose", [by_route(request("ketorolac", dose), route)],
                       patient=patient("male", "1950-01-01"))
    assert len(found) == 1 and f"the label's dose is {limit} mg" in found[0]["summary"]
    action = found[0]["suggestions"][0]["actions"][0]
    assert action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == limit


def test_ketorolac_30_mg_im_for_an_older_patient_is_the_labels_single_dose_and_no_card() -> None:
    old = patient("male", "1950-01-01")
    assert rule_cards("ketorolac-lower-dose", [by_route(request("ketorolac", 30), "Intramuscular route")], patient=old) == []
    assert rule_cards("ketorolac-lower-dose", [by_route(request("ketorolac", 15), "Intravenous route")], patient=old) == []
