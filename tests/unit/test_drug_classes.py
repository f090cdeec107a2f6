"""Drug classes with their WHO ATC codes, and the labelled 24-hour maxima by route."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine import terminology

DATA = Path(terminology.__file__).parent / "data"
DRUGS: list[dict[str, Any]] = json.loads((DATA / "drugs.json").read_text(encoding="utf-8"))
CLASSES: dict[str, Any] = json.loads((DATA / "drug_classes.json").read_text(encoding="utf-8"))["classes"]
MAXIMA: list[dict[str, Any]] = json.loads((DATA / "daily_maxima.json").read_text(encoding="utf-8"))["maxima"]

THE_CLASSES = {"triptan", "ergot", "gepant", "ditan", "nsaid", "simple-analgesic", "opioid", "combination-analgesic",
               "antiemetic", "corticosteroid", "cgrp-antibody", "supplement"}
DIARY_ROUTES = set(terminology.diary_codes()["route"])


def test_the_class_table_holds_exactly_the_agreed_classes() -> None:
    assert set(CLASSES) == THE_CLASSES
    assert terminology.drug_class_keys() == list(CLASSES)


def test_every_class_a_drug_names_is_in_the_class_table() -> None:
    used = {d["class"] for d in DRUGS if "class" in d}
    assert used <= set(CLASSES)
    assert used == THE_CLASSES  # and every class has a drug


def test_every_drug_with_a_class_has_an_rxnorm_code() -> None:
    for drug in (d for d in DRUGS if "class" in d):
        if "code" in drug:
            assert drug["system"] == terminology.RXNORM and drug["code"].isdigit(), drug["key"]
        else:  # a fixed combination without a single code lists each ingredient's code
            assert len(drug["ingredients"]) >= 2, drug["key"]
            for ingredient in drug["ingredients"]:
                assert ingredient["system"] == terminology.RXNORM and ingredient["code"].isdigit(), drug["key"]
                assert ingredient["verified"] is True, drug["key"]


def test_every_class_is_coded_in_atc_with_a_display_and_a_source() -> None:
    for key, entry in CLASSES.items():
        assert entry["display"], key
        assert entry["atc"], key
        for code in entry["atc"]:
            assert code["system"] == terminology.ATC, key
            assert code["code"][0] in "ACHMNR" and code["code"][1:3].isdigit(), (key, code["code"])
            assert code["display"], key
            assert "atcddd.fhi.no/atc_ddd_index/?code=" + code["code"] in code["source"], key
            assert ";" in code["source"], (key, "the WHOCC page and a stored copy where it was confirmed")


@pytest.mark.parametrize("table", ["drug_classes.json", "daily_maxima.json"])
def test_the_new_tables_say_where_they_come_from(table: str) -> None:
    assert len(json.loads((DATA / table).read_text(encoding="utf-8"))["_source"]) > 40


def test_every_maximum_names_its_label_and_what_the_label_says() -> None:
    assert MAXIMA
    for entry in MAXIMA:
        where = (entry["drug"], entry["route"])
        assert len(entry["source"]) > 30 and "label" in entry["source"].lower(), where
        assert entry["label_says"], where
        assert entry["product"], where


def test_a_maximum_names_a_drug_of_the_table_by_its_key_and_a_diary_route() -> None:
    keys = {d["key"] for d in DRUGS}
    seen = set()
    for entry in MAXIMA:
        where = (entry["drug"], entry["route"])
        assert entry["drug"] in keys and entry["route"] in DIARY_ROUTES, where
        assert where not in seen, where
        seen.add(where)
        assert Decimal(entry["amount"]) > 0 and entry["unit"] == "mg" and entry["per"] == "24 h", where


def test_every_drug_with_a_maximum_has_a_class() -> None:
    for entry in MAXIMA:
        assert terminology.drug_class(entry["drug"]) is not None, entry["drug"]


@pytest.mark.parametrize(
    ("name", "key", "atc"),
    [
        ("sumatriptan", "triptan", {"N02CC"}),
        ("Imitrex", "triptan", {"N02CC"}),
        ("MAXALT", "triptan", {"N02CC"}),
        ("frova", "triptan", {"N02CC"}),
        ("ergotamine", "ergot", {"N02CA"}),
        ("DHE", "ergot", {"N02CA"}),
        ("ubrelvy", "gepant", {"N02CD"}),
        ("atogepant", "gepant", {"N02CD"}),
        ("Reyvow", "ditan", {"N02CC08"}),
        ("ibuprofen", "nsaid", {"M01A", "N02BA"}),
        ("Aleve", "nsaid", {"M01A", "N02BA"}),
        ("aspirin", "nsaid", {"M01A", "N02BA"}),
        ("acetaminophen", "simple-analgesic", {"N02BE"}),
        ("Paracetamol", "simple-analgesic", {"N02BE"}),
        ("codeine", "opioid", {"N02A"}),
        ("tramadol", "opioid", {"N02A"}),
        ("Excedrin Migraine", "combination-analgesic", {"N02BE51", "N02BA51"}),
        ("reglan", "antiemetic", {"A03FA", "A04AA", "N05AB04", "N05AA01", "N05AD", "R06AD02"}),
        ("zofran", "antiemetic", {"A03FA", "A04AA", "N05AB04", "N05AA01", "N05AD", "R06AD02"}),
        ("dexamethasone", "corticosteroid", {"H02AB"}),
        ("Aimovig", "cgrp-antibody", {"N02CD"}),
        ("vyepti", "cgrp-antibody", {"N02CD"}),
        ("magnesium", "supplement", {"A12CC", "A11HA04", "C01EB09"}),
        ("magnesium oxide", "supplement", {"A12CC", "A11HA04", "C01EB09"}),
        ("vitamin B2", "supplement", {"A12CC", "A11HA04", "C01EB09"}),
    ],
)
def test_a_drug_name_gives_its_class_and_atc_codes(name: str, key: str, atc: set[str]) -> None:
    found = terminology.drug_class(name)
    assert found is not None
    assert found.key == key
    assert {c.code for c in found.atc} == atc
    assert all(c.system == terminology.ATC for c in found.atc)


def test_the_triptan_class_is_coded_selective_serotonin_agonists() -> None:
    found = terminology.drug_class("sumatriptan")
    assert found is not None
    assert found.atc == (terminology.Code(terminology.ATC, "N02CC", "Selective serotonin (5HT1) agonists"),)


@pytest.mark.parametrize("name", ["sodium chloride", "lidocaine", "valproate", "caffeine", "diphenhydramine",
                                  "no such drug", ""])
def test_a_drug_without_a_class_or_not_in_the_table_has_none(name: str) -> None:
    assert terminology.drug_class(name) is None


@pytest.mark.parametrize(
    ("name", "route", "amount"),
    [
        ("sumatriptan", "oral", "200"),
        ("Imitrex", "subcutaneous", "12"),
        ("sumatriptan", "nasal", "40"),
        ("rizatriptan", "oral", "30"),
        ("zomig", "oral", "10"),
        ("zolmitriptan", "nasal", "10"),
        ("eletriptan", "oral", "80"),
        ("naratriptan", "oral", "5"),
        ("ubrogepant", "oral", "200"),
        ("Nurtec ODT", "oral", "75"),
        ("lasmiditan", "oral", "200"),
        ("D.H.E. 45", "intravenous", "2"),
    ],
)
def test_the_labelled_daily_maximum_by_route(name: str, route: str, amount: str) -> None:
    assert terminology.daily_maximum(name, route) == (Decimal(amount), "mg")


@pytest.mark.parametrize(
    ("name", "route"),
    [("sumatriptan", "rectal"), ("rizatriptan", "nasal"), ("no such drug", "oral"), ("sodium chloride", "oral"),
     ("caffeine", "oral")],
)
def test_no_maximum_without_a_label_number(name: str, route: str) -> None:
    assert terminology.daily_maximum(name, route) is None


def test_the_daily_maximum_of_dhe_iv_agrees_with_its_administration_limit() -> None:
    label = terminology.administration_limits("dihydroergotamine", "intravenous")
    assert label is not None and "2 mg/24 h" in label["per_period"]
    assert terminology.daily_maximum("dihydroergotamine", "intravenous") == (Decimal(2), "mg")


def test_the_combination_has_no_single_code_but_its_ingredients() -> None:
    assert terminology.drug("excedrin") is None
    assert terminology.drug_key("Excedrin") == "acetaminophen / aspirin / caffeine"
    entry = next(d for d in DRUGS if d["key"] == "acetaminophen / aspirin / caffeine")
    assert [i["code"] for i in entry["ingredients"]] == ["161", "1191", "1886"]
