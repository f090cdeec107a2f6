"""The code tables: every code carries its source, the administration methods are SNOMED CT, and
a MedicationRequest carries the product-level RxNorm code next to the ingredient."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine import terminology
from fhir_migraine.profiles import codes as package_codes
from tests.conftest import EXAMPLES, PROTOCOLS
from tests.helpers import run_cli

DATA = Path(terminology.__file__).parent / "data"
DRUGS = json.loads((DATA / "drugs.json").read_text(encoding="utf-8"))
PRODUCT_TTYS = {"SCD", "SCDF", "SCDG", "SBD", "SBDF", "SBDG", "GPCK", "BPCK"}  # US Core medication codes


def _coded_entries(value: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    """Every entry of a table that gives a code, with where it is."""
    found = []
    if isinstance(value, dict):
        if "code" in value and "system" in value:
            found.append((path, value))
        for key, child in value.items():
            found += _coded_entries(child, f"{path}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _coded_entries(child, f"{path}[{i}]")
    return found


@pytest.mark.parametrize("table", ["drugs.json", "methods.json", "routes.json"])
def test_every_code_of_a_table_says_whether_it_was_verified_and_where(table: str) -> None:
    entries = _coded_entries(json.loads((DATA / table).read_text(encoding="utf-8")))
    assert entries
    for path, entry in entries:
        assert isinstance(entry.get("verified"), bool), path
        assert isinstance(entry.get("source"), str) and len(entry["source"]) > 20, path


def test_products_are_rxnorm_clinical_drugs_with_a_verified_source() -> None:
    products = [(d["key"], p) for d in DRUGS for p in d.get("products", [])]
    assert {key for key, _ in products} >= {"sodium chloride", "dexamethasone"}
    for key, product in products:
        assert product["system"] == terminology.RXNORM, key
        assert product["tty"] in PRODUCT_TTYS, key
        assert product["verified"] is True, key  # only codes with a citable source are written out
        assert product["routes"], key


@pytest.mark.parametrize(
    ("name", "code"),
    [("pyridoxine", "684879"), ("vitamin b6", "684879"), ("eptinezumab", "2282660"), ("Vyepti", "2282660"),
     ("erenumab", "2045613"), ("fremanezumab", "2056691"), ("galcanezumab", "2058846")],
)
def test_the_corrected_ingredients_are_rxnorm(name: str, code: str) -> None:
    found = terminology.drug(name)
    assert found is not None and (found.system, found.code) == (terminology.RXNORM, code)


def test_no_vitamin_is_coded_as_a_snomed_substance_any_more() -> None:
    for name in ("thiamine", "riboflavin", "pyridoxine", "cyanocobalamin", "ascorbic acid"):
        found = terminology.drug(name)
        assert found is not None and found.system == terminology.RXNORM, name


@pytest.mark.parametrize(
    ("step_type", "code", "display"),
    [("infusion", "764794000", "Infuse"), ("push", "740685003", "Inject"), ("injection", "740685003", "Inject")],
)
def test_administration_methods_are_snomed_ct(step_type: str, code: str, display: str) -> None:
    assert terminology.method(step_type) == terminology.Code(terminology.SNOMED, code, display)


def test_the_method_value_set_lists_each_code_once() -> None:
    spec = next(s for s in package_codes.VALUE_SETS if s.id == "migraine-administration-method")
    contains = package_codes.value_set(spec)["expansion"]["contains"]
    assert sorted(c["code"] for c in contains) == ["740685003", "764794000"]


def test_products_are_chosen_by_route() -> None:
    assert [c.code for c in terminology.drug_products("dexamethasone", "intravenous")] == ["1812073"]
    assert terminology.drug_products("dexamethasone", "oral") == ()
    assert terminology.drug_products("metoclopramide", "intravenous") == ()
    assert terminology.drug_products("no such drug", "intravenous") == ()


def _bundle(order: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / "bundles" / f"{order}.bundle.json").read_text(encoding="utf-8"))


def _requests(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]


def test_a_push_carries_the_ingredient_then_the_product() -> None:
    push = next(r for r in _requests(_bundle("ed-migraine-rescue"))
                if r.get("medicationCodeableConcept", {}).get("text") == "dexamethasone")
    codings = push["medicationCodeableConcept"]["coding"]
    assert [(c["code"], c["display"]) for c in codings] == [("3264", "dexamethasone"),
                                                              ("1812073", "dexamethasone Injection")]


def test_a_bag_of_saline_names_its_product_and_keeps_the_additive_ingredient() -> None:
    bag = _requests(_bundle("eptinezumab-preventive"))[0]["contained"][0]
    base, additive = bag["ingredient"]
    assert [c["code"] for c in base["itemCodeableConcept"]["coding"]] == ["9863", "1807628"]
    assert [c["code"] for c in additive["itemCodeableConcept"]["coding"]] == ["2282660"]


def test_the_eptinezumab_example_is_a_labelled_infusion() -> None:
    request = _requests(_bundle("eptinezumab-preventive"))[0]
    dosage = request["dosageInstruction"][0]
    assert dosage["method"]["coding"][0]["code"] == "764794000"
    assert dosage["timing"]["repeat"]["duration"] >= 30 and dosage["timing"]["repeat"]["durationUnit"] == "min"
    assert (dosage["timing"]["repeat"]["period"], dosage["timing"]["repeat"]["periodUnit"]) == (3, "mo")


def test_a_step_with_its_own_code_gets_no_product_from_the_table(tmp_path: Path) -> None:
    protocol = (PROTOCOLS / "ed-migraine-rescue.yaml").read_text(encoding="utf-8").replace(
        "    drug: dexamethasone\n",
        '    drug: dexamethasone\n    code: {system: snomed, code: "372584003", display: "Dexamethasone"}\n',
    )
    (tmp_path / "ed-migraine-rescue.yaml").write_text(protocol, encoding="utf-8")
    run = run_cli("map", "order", str(EXAMPLES / "orders" / "ed-migraine-rescue.json"), "--protocols", str(tmp_path))
    assert run.code == 0, run.err
    push = next(r for r in _requests(run.json()) if r.get("medicationCodeableConcept", {}).get("text") == "dexamethasone")
    assert [c["code"] for c in push["medicationCodeableConcept"]["coding"]] == ["372584003"]


def test_unmap_finds_the_order_whatever_the_order_of_the_codings(tmp_path: Path) -> None:
    bundle = _bundle("ed-migraine-rescue")
    for request in _requests(bundle):
        concepts = [request.get("medicationCodeableConcept")]
        concepts += [i["itemCodeableConcept"] for c in request.get("contained", []) for i in c["ingredient"]]
        for concept in filter(None, concepts):
            concept["coding"].reverse()
    path = tmp_path / "reordered.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    run = run_cli("unmap", str(path), "--protocols", str(PROTOCOLS))
    assert run.code == 0, run.err
    assert run.json()["orders"] == [json.loads((EXAMPLES / "orders" / "ed-migraine-rescue.json").read_text())]
