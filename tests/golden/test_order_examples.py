"""The example orders: each maps to its golden Bundle, which parses and unmaps to the order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.conftest import EXAMPLES, PROTOCOLS
from tests.helpers import run_cli

ORDERS = sorted((EXAMPLES / "orders").glob("*.json"))


def golden(order: Path) -> Path:
    return EXAMPLES / "bundles" / f"{order.stem}.bundle.json"


def test_every_protocol_has_an_example_order() -> None:
    assert {p.stem for p in PROTOCOLS.glob("*.yaml")} == {o.stem for o in ORDERS}


@pytest.mark.parametrize("order", ORDERS, ids=lambda p: p.stem)
def test_map_order_prints_the_golden_bundle(order: Path) -> None:
    run = run_cli("map", "order", str(order), "--protocols", str(PROTOCOLS))
    assert run.code == 0, run.err
    assert run.out == golden(order).read_text(encoding="utf-8")


@pytest.mark.parametrize("order", ORDERS, ids=lambda p: p.stem)
def test_golden_bundle_parses_as_fhir_r4(order: Path) -> None:
    Bundle.model_validate(json.loads(golden(order).read_text(encoding="utf-8")))


@pytest.mark.parametrize("order", ORDERS, ids=lambda p: p.stem)
def test_unmap_of_the_golden_bundle_gives_the_order_back(order: Path) -> None:
    run = run_cli("unmap", str(golden(order)), "--protocols", str(PROTOCOLS))
    assert run.code == 0, run.err
    assert run.json() == {"orders": [json.loads(order.read_text())], "diary": []}


def test_unmap_reads_a_searchset_in_any_order_and_ignores_other_resources(tmp_path: Path) -> None:
    bundle = json.loads(golden(ORDERS[0]).read_text())
    entries = [{"resource": e["resource"], "search": {"mode": "match"}} for e in reversed(bundle["entry"])]
    entries.insert(1, {"resource": {"resourceType": "Patient", "id": "123"}, "search": {"mode": "include"}})
    searchset = tmp_path / "searchset.json"
    searchset.write_text(json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": entries}))
    run = run_cli("unmap", str(searchset), "--protocols", str(PROTOCOLS))
    assert run.code == 0, run.err
    assert run.json()["orders"] == [json.loads(ORDERS[0].read_text())]


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS.glob("*.yaml")), ids=lambda p: p.stem)
def test_export_protocol_gives_a_plan_definition(protocol: Path) -> None:
    from fhir.resources.R4B.plandefinition import PlanDefinition

    run = run_cli("export-protocol", str(protocol))
    assert run.code == 0, run.err
    plan = run.json()
    PlanDefinition.model_validate(plan)
    assert plan["url"].endswith(f"/PlanDefinition/{protocol.stem}")
    activities = [c for c in plan["contained"] if c["resourceType"] == "ActivityDefinition"]
    assert [a["definitionCanonical"] for a in plan["action"]] == [f"#{a['id']}" for a in activities]
