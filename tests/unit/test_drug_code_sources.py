"""The drug table says which codes were confirmed and where, and the docs name the ones that were not."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine import terminology
from tests.conftest import ROOT

DRUGS = json.loads((Path(terminology.__file__).parent / "data" / "drugs.json").read_text(encoding="utf-8"))
TERMINOLOGY_DOC = (ROOT / "docs" / "terminology.md").read_text(encoding="utf-8")

# RxNorm ingredients confirmed in the OHDSI vocabulary build (docs/terminology.md).
CONFIRMED_IN_THE_OHDSI_BUILD = [
    ("sodium chloride", "9863"), ("calcium chloride", "1901"), ("lactate", "114202"),
    ("magnesium chloride", "6579"), ("calcium gluconate", "1908"), ("sodium bicarbonate", "36676"),
    ("coenzyme q10", "21406"), ("thiamine", "10454"), ("riboflavin", "9346"),
]


def _drug_entries() -> list[dict[str, Any]]:
    """Every coded entry of the table: the drugs and the ingredients of multi-ingredient drugs (a
    fixed combination without a single code is coded by its ingredients only)."""
    return [e for drug in DRUGS for e in [drug, *drug.get("ingredients", [])] if "code" in e]


@pytest.mark.parametrize(("key", "code"), CONFIRMED_IN_THE_OHDSI_BUILD, ids=[k for k, _ in CONFIRMED_IN_THE_OHDSI_BUILD])
def test_a_confirmed_ingredient_is_verified_and_names_where(key: str, code: str) -> None:
    entries = [e for e in _drug_entries() if e["key"] == key]
    assert entries, key
    for entry in entries:
        assert (entry["system"], entry["code"], entry.get("tty", "IN")) == (terminology.RXNORM, code, "IN")
        assert entry["verified"] is True
        assert "OHDSI/Vocabulary-v5.0 DPD/manual_work/prev_RTC.txt" in entry["source"]
        assert f"CONCEPT_CODE_2 {code} " in entry["source"]


@pytest.mark.parametrize(("name", "code"), [("thiamine", "10454"), ("vitamin b2", "9346"), ("CoQ10", "21406")])
def test_the_vitamins_keep_their_rxnorm_ingredient(name: str, code: str) -> None:
    found = terminology.drug(name)
    assert found is not None and (found.system, found.code) == (terminology.RXNORM, code)


def test_coenzyme_q10_is_displayed_as_rxnorm_names_it() -> None:
    found = terminology.drug("ubidecarenone")
    assert found is not None and found.display == "coenzyme Q10"


def test_the_docs_name_exactly_the_unconfirmed_drug_codes() -> None:
    unconfirmed = {e["code"] for e in _drug_entries() if e["verified"] is False}
    unconfirmed |= {p["code"] for drug in DRUGS for p in drug.get("products", []) if p["verified"] is False}
    paragraph = TERMINOLOGY_DOC.split("Still unconfirmed", 1)[1].split("\n\n", 1)[0]
    assert unconfirmed == set(re.findall(r"\b\d{4,8}\b", paragraph))
