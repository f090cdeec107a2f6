"""``map order`` and ``unmap`` from the shell: the site's order settings, the weight carried with the
order, and the protocol version an order names."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine.errors import EXIT_INVALID, EXIT_USAGE
from tests.cases import ORDER, PROTOCOL
from tests.conftest import EXAMPLES, PROTOCOLS
from tests.helpers import run_cli


def _write(tmp_path: Path, protocol: dict[str, Any], order: dict[str, Any]) -> tuple[Path, Path]:
    folder = tmp_path / "protocols"
    folder.mkdir(exist_ok=True)
    (folder / "protocol.json").write_text(json.dumps(protocol))
    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps(order))
    return folder, order_file


def _statuses(bundle: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["resource"]["status"], e["resource"]["intent"]) for e in bundle["entry"]
            if e["resource"]["resourceType"] in ("MedicationRequest", "RequestGroup")}


def test_map_order_writes_drafts_unless_the_site_says_otherwise(tmp_path: Path, monkeypatch) -> None:
    folder, order = _write(tmp_path, PROTOCOL, ORDER)
    run = run_cli("map", "order", str(order), "--protocols", str(folder))
    assert run.code == 0, run.err
    assert _statuses(run.json()) == {("draft", "order")}
    monkeypatch.setenv("FHIR_MIGRAINE_ORDER_STATUS", "active")
    monkeypatch.setenv("FHIR_MIGRAINE_ORDER_INTENT", "plan")
    run = run_cli("map", "order", str(order), "--protocols", str(folder))
    assert run.code == 0, run.err
    assert _statuses(run.json()) == {("active", "plan")}


@pytest.mark.parametrize(("name", "value"), [("FHIR_MIGRAINE_ORDER_STATUS", "completed"),
                                             ("FHIR_MIGRAINE_ORDER_INTENT", "filler-order"),
                                             ("FHIR_MIGRAINE_WEIGHT_OBSERVATION", "perhaps")])
def test_a_bad_order_setting_stops_map_order_naming_its_variable(tmp_path: Path, monkeypatch, name: str,
                                                                 value: str) -> None:
    folder, order = _write(tmp_path, PROTOCOL, ORDER)
    monkeypatch.setenv(name, value)
    run = run_cli("map", "order", str(order), "--protocols", str(folder))
    assert (run.code, run.out) == (EXIT_USAGE, "")
    assert name in run.err and "Traceback" not in run.err


def test_the_weight_is_charted_only_when_the_site_asks(tmp_path: Path, monkeypatch) -> None:
    order = EXAMPLES / "orders" / "dhe-repeat.json"
    plain = run_cli("map", "order", str(order), "--protocols", str(PROTOCOLS)).json()
    assert [e for e in plain["entry"] if e["resource"]["resourceType"] == "Observation"] == []
    monkeypatch.setenv("FHIR_MIGRAINE_WEIGHT_OBSERVATION", "true")
    run = run_cli("map", "order", str(order), "--protocols", str(PROTOCOLS))
    assert run.code == 0, run.err
    (charted,) = [e["resource"] for e in run.json()["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert charted["category"][0]["coding"][0]["code"] == "vital-signs"
    # The charted copy changes nothing of how the order reads back.
    charted_bundle = tmp_path / "charted.json"
    charted_bundle.write_text(run.out)
    unmapped = run_cli("unmap", str(charted_bundle), "--protocols", str(PROTOCOLS))
    assert unmapped.json()["orders"] == [json.loads(order.read_text())]


def test_an_order_naming_a_version_the_files_lack_is_refused(tmp_path: Path) -> None:
    folder, order = _write(tmp_path, PROTOCOL, dict(ORDER, protocol_version="2.0"))
    run = run_cli("map", "order", str(order), "--protocols", str(folder))
    assert (run.code, run.out) == (EXIT_INVALID, "")
    assert "$.protocol_version:" in run.err and "'2.0'" in run.err


def test_unmap_leaves_every_dose_explicit_when_the_files_hold_another_version(tmp_path: Path) -> None:
    folder, order = _write(tmp_path, PROTOCOL, ORDER)
    bundle = tmp_path / "bundle.json"
    bundle.write_text(run_cli("map", "order", str(order), "--protocols", str(folder)).out)
    same = run_cli("unmap", str(bundle), "--protocols", str(folder)).json()["orders"]
    assert same == [dict(ORDER, protocol_version="1.0")]
    newer = copy.deepcopy(PROTOCOL)
    newer["version"] = "2.0"
    newer["steps"][1]["dose"] = "5 mg"
    _write(tmp_path, newer, ORDER)
    other = run_cli("unmap", str(bundle), "--protocols", str(folder)).json()["orders"]
    # 2.0 is not the version the order followed: its defaults are not taken for the order's.
    assert other[0]["protocol_version"] == "1.0"
    assert other[0]["overrides"]["antiemetic"] == {"dose": "10 mg"}


def test_the_status_migrainosus_examples_have_an_indication_with_status_migrainosus() -> None:
    for name in ("dhe-repeat", "status-migrainosus"):
        run = run_cli("export-protocol", str(PROTOCOLS / f"{name}.yaml"))
        assert run.code == 0, run.err
        reason = run.json()["action"][0]["reason"][0]["coding"][0]["code"]
        assert reason.startswith("G43.") and reason.endswith("1"), (name, reason)


def test_unmap_reads_the_weight_of_a_bundle_written_before_it_travelled_with_the_order() -> None:
    from fhir_migraine import operations
    from fhir_migraine.inputs.orders import finder
    from fhir_migraine.library import read_protocols
    from fhir_migraine.mapping.order_settings import OrderSettings

    order = json.loads((EXAMPLES / "orders" / "valproate-weight-based.json").read_text())
    find = finder(read_protocols(PROTOCOLS))
    bundle = operations.map_order(order, find, settings=OrderSettings(weight_observation=True))
    for entry in bundle["entry"]:  # as an earlier version wrote it: the weight only in the chart
        request = entry["resource"]
        if request["resourceType"] == "MedicationRequest":
            request["contained"] = [c for c in request.get("contained", []) if c.get("id") != "weight"]
            if not request["contained"]:
                del request["contained"]
            request["supportingInformation"] = [s for s in request["supportingInformation"] if s["reference"] != "#weight"]
            if not request["supportingInformation"]:
                del request["supportingInformation"]
    (found,) = operations.unmap(bundle, find)["orders"]
    assert found["weight"] == "62 kg"
    assert found == dict(order, weight="62 kg")
