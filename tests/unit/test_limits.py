"""Dose limits: sums of a schedule's doses over a sliding period, declared limits emitted as
Dosage elements, the labelled rate findings (warning + DetectedIssue), off-label approval."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine import library, operations
from fhir_migraine.errors import InputError
from fhir_migraine.inputs import protocols
from fhir_migraine.inputs.limits import (
    course_total,
    most_in_period,
    occurrences,
    parse_per_period,
)
from fhir_migraine.inputs.protocols import Schedule
from fhir_migraine.inputs.quantity import parse_quantity
from fhir_migraine.mapping.fhir import full_url, identifiers
from tests.cases import ORDER, PROTOCOL
from tests.conftest import ROOT
from tests.helpers import run_cli

EXAMPLES = ROOT / "examples"
NOW = "2026-12-01T08:00:00Z"


def _mg(text: str) -> Any:
    return parse_quantity(text, dimensions=("mass",))


def _map(protocol: dict[str, Any], order: dict[str, Any]) -> operations.MappedOrder:
    loaded = protocols.load(protocol)
    return operations.map_order_with_warnings(order, {loaded.id: loaded}.get, now=lambda: NOW)


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _example(name: str) -> operations.MappedOrder:
    found = library.read_protocols(EXAMPLES / "protocols")
    order = json.loads((EXAMPLES / "orders" / f"{name}.json").read_text())
    return operations.map_order_with_warnings(order, found.get, now=lambda: NOW)


# -- sums over a schedule ------------------------------------------------------------------------


def test_dhe_every_8_hours_gives_3_mg_in_24_hours_and_9_mg_in_the_course() -> None:
    doses = occurrences(_mg("1 mg"), Schedule("repeat", Decimal(8), "h", 9))
    assert [d.at for d in doses] == [Decimal(480 * i) for i in range(9)]
    total, start = most_in_period(doses, Decimal(24 * 60))
    assert (total, start) == (Decimal("0.003"), Decimal(0))
    assert course_total(doses) == Decimal("0.009")


def test_a_dose_exactly_one_period_later_falls_in_the_next_window() -> None:
    doses = occurrences(_mg("2 mg"), Schedule("repeat", Decimal(24), "h", 3))
    assert most_in_period(doses, Decimal(24 * 60))[0] == Decimal("0.002")


def test_a_different_first_dose_takes_the_first_occurrence() -> None:
    doses = occurrences(_mg("1 mg"), Schedule("repeat", Decimal(8), "h", 9), first=_mg("0.5 mg"))
    assert [d.dose.text() for d in doses[:2]] == ["0.5 mg", "1 mg"]
    assert most_in_period(doses, Decimal(24 * 60))[0] == Decimal("0.003")  # 8-32 h holds three 1 mg doses
    assert course_total(doses) == Decimal("0.0085")


def test_a_protocols_first_dose_counts_in_its_declared_limits() -> None:
    protocol = copy.deepcopy(PROTOCOL)
    protocol["schedule"] = {"kind": "repeat", "every": 8, "unit": "h", "count": 9}
    protocol["steps"].append({"id": "dhe", "type": "push", "drug": "dihydroergotamine", "dose": "1 mg",
                              "first_dose": "0.5 mg", "over": "3 min", "limits": {"per_course": "8.5 mg"},
                              "off_label": {"reason": "Raskin protocol", "approved_by": "P&T"}})
    protocols.load(protocol)  # 0.5 mg + 8 x 1 mg = 8.5 mg
    protocol["steps"][3]["limits"] = {"per_course": "8 mg"}
    with pytest.raises(InputError) as refused:
        protocols.load(protocol)
    assert [(p.path, "8.5 mg" in p.message) for p in refused.value.problems] == [("$.steps[3].limits.per_course", True)]


def test_an_interval_schedule_counts_its_sessions_weeks_apart() -> None:
    doses = occurrences(_mg("1 g"), Schedule("interval", Decimal(3), "wk", 6))
    assert most_in_period(doses, Decimal(7 * 24 * 60))[0] == Decimal(1)
    assert most_in_period(doses, Decimal(28 * 24 * 60))[0] == Decimal(2)


@pytest.mark.parametrize(("raw", "text", "minutes"), [
    ("2 mg/24 h", "2 mg/24 h", 1440),
    ("6 mg/wk", "6 mg/wk", 10080),
    ("6 mg / 1 wk", "6 mg/wk", 10080),
    ({"dose": "120 mg", "period": "24 h"}, "120 mg/24 h", 1440),
])
def test_a_limit_per_period_is_read_in_every_form(raw: Any, text: str, minutes: int) -> None:
    limit = parse_per_period(raw)
    assert (limit.text(), limit.minutes()) == (text, Decimal(minutes))


# -- declared limits in FHIR -----------------------------------------------------------------------


def test_the_repeated_dhe_example_declares_its_limits_as_dosage_elements() -> None:
    mapped = _example("dhe-repeat")
    dhe = next(r for r in _resources(mapped.bundle, "MedicationRequest")
               if identifiers(r)[0]["value"].endswith("/dhe"))
    dosage = dhe["dosageInstruction"][0]
    assert dosage["maxDosePerPeriod"]["numerator"]["value"] == 3
    period = dosage["maxDosePerPeriod"]["denominator"]
    assert (period["value"], period["code"]) == (24, "h")
    assert dosage["maxDosePerAdministration"]["value"] == 1


def test_limits_of_a_bag_additive_are_the_bags_dosage_limits() -> None:
    protocol = copy.deepcopy(PROTOCOL)
    protocol["steps"][0]["additives"][0]["limits"] = {"per_period": "4 g/24 h"}
    request = _resources(_map(protocol, ORDER).bundle, "MedicationRequest")[0]
    assert request["dosageInstruction"][0]["maxDosePerPeriod"]["numerator"]["code"] == "g"


# -- off-label -------------------------------------------------------------------------------------


def test_the_off_label_dhe_regimen_is_recorded_in_a_detected_issue_the_request_points_to() -> None:
    mapped = _example("dhe-repeat")
    assert mapped.warnings is None  # approved: nothing to warn about
    [issue] = _resources(mapped.bundle, "DetectedIssue")
    dhe = next(e for e in mapped.bundle["entry"] if identifiers(e["resource"])[0]["value"].endswith("/dhe"))
    assert issue["code"]["coding"][0]["code"] == "DOSEH"
    assert issue["implicated"] == [{"reference": dhe["fullUrl"]}]
    assert dhe["resource"]["detectedIssue"] == [{"reference": full_url(identifiers(issue)[0])}]
    assert "3 mg within 24 h" in issue["detail"] and "2 mg/24 h" in issue["detail"]
    assert issue["mitigation"][0]["author"]["display"] == "Pharmacy and Therapeutics Committee"


def test_an_order_whose_override_goes_above_the_label_is_refused_without_off_label() -> None:
    protocol = copy.deepcopy(PROTOCOL)
    protocol["schedule"] = {"kind": "repeat", "every": 8, "unit": "h", "count": 3}
    protocol["steps"].append({"id": "dhe", "type": "push", "drug": "dihydroergotamine", "dose": "0.5 mg",
                              "over": "3 min"})
    _map(protocol, ORDER)  # 1.5 mg in 24 h: within the label
    order = ORDER | {"overrides": {"dhe": {"dose": "1 mg"}}}
    with pytest.raises(InputError) as refused:
        _map(protocol, order)
    assert [p.path for p in refused.value.problems] == ["$.overrides.dhe.dose"]


def test_a_per_kg_dose_above_a_declared_limit_is_refused_at_the_weight() -> None:
    protocol = copy.deepcopy(PROTOCOL)
    protocol["steps"][2]["limits"] = {"per_administration": "1000 mg"}
    protocol["steps"][2]["max_dose"] = "2000 mg"
    with pytest.raises(InputError) as refused:
        _map(protocol, ORDER | {"weight": "80 kg"})
    assert [p.path for p in refused.value.problems] == ["$.weight"]


# -- labelled rates ------------------------------------------------------------------------------


def test_valproate_faster_than_20_mg_per_min_maps_with_a_warning_and_a_detected_issue_naming_both_rates() -> None:
    mapped = _map(PROTOCOL, ORDER)  # 15 mg/kg x 60 kg = 900 mg over 15 min
    [issue] = _resources(mapped.bundle, "DetectedIssue")
    assert issue["detail"].startswith("valproate 900 mg IV push over 15 min = 60 mg/min; label: at most 20 mg/min")
    assert issue["code"]["coding"][0]["code"] == "DOSE"
    assert issue["severity"] == "high"
    assert mapped.warnings is not None
    [warning] = mapped.warnings["issue"]
    assert warning["severity"] == "warning"
    assert warning["diagnostics"] == issue["detail"]
    entry = int(warning["expression"][0].split("[")[1].split("]")[0])
    assert mapped.bundle["entry"][entry]["fullUrl"] == issue["implicated"][0]["reference"]


@pytest.mark.parametrize("name", ["ed-migraine-rescue", "preventive-nutrient", "status-migrainosus",
                                  "valproate-weight-based"])
def test_examples_within_the_labels_map_without_warnings(name: str) -> None:
    mapped = _example(name)
    assert mapped.warnings is None
    assert _resources(mapped.bundle, "DetectedIssue") == []


@pytest.mark.parametrize(("step", "said"), [
    ({"id": "p", "type": "push", "drug": "prochlorperazine", "dose": "10 mg", "over": "1 min"},
     "prochlorperazine 10 mg IV push over 1 min = 10 mg/min; label: at most 5 mg/min"),
    ({"id": "p", "type": "push", "drug": "prochlorperazine", "dose": "10 mg"},
     "prochlorperazine 10 mg IV push with no time to give it over; label: at most 5 mg/min"),
    ({"id": "p", "type": "push", "drug": "ketorolac", "dose": "30 mg", "over": "10 s"},
     "ketorolac 30 mg IV push over 10 s; label: over at least 15 s"),
    ({"id": "p", "type": "infusion", "base": {"drug": "saline", "volume": "1000 mL"},
      "additives": [{"drug": "magnesium sulfate", "dose": "4 g"}], "rate": "4000 mL/h"},
     "magnesium sulfate 4 g IV in 1000 mL at 4000 mL/h (over 15 min) = 266.67 mg/min; label: at most 150 mg/min"),
])
def test_a_delivery_beyond_a_labelled_rate_is_found(step: dict[str, Any], said: str) -> None:
    protocol = copy.deepcopy(PROTOCOL) | {"steps": [step]}
    del protocol["min_duration"]
    mapped = _map(protocol, ORDER)
    [issue] = _resources(mapped.bundle, "DetectedIssue")
    assert issue["detail"].startswith(said)
    assert mapped.warnings is not None and mapped.warnings["issue"][0]["diagnostics"] == issue["detail"]


def test_an_approved_rate_exception_maps_without_warning_or_detected_issue() -> None:
    protocol = copy.deepcopy(PROTOCOL)
    assert _map(protocol, ORDER).warnings is not None  # valproate 900 mg over 15 min
    protocol["steps"][2]["exceptions"] = [{"rule": "rate", "reason": "ED migraine protocol",
                                           "approved_by": "Pharmacy and Therapeutics Committee"}]
    mapped = _map(protocol, ORDER)
    assert mapped.warnings is None
    assert _resources(mapped.bundle, "DetectedIssue") == []


# -- the CLI: warnings on stderr (the service's answers: tests/api/test_order_warnings.py) ------------------


def test_the_cli_prints_the_bundle_and_the_warnings_on_stderr_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "protocol.json").write_text(json.dumps(PROTOCOL))
    (tmp_path / "order.json").write_text(json.dumps(ORDER))
    run = run_cli("map", "order", str(tmp_path / "order.json"), "--protocols", str(tmp_path / "protocol.json"))
    assert run.code == 0
    assert run.json()["resourceType"] == "Bundle"
    outcome = json.loads(run.err)
    assert outcome["resourceType"] == "OperationOutcome"
    assert "60 mg/min" in outcome["issue"][0]["diagnostics"]
    assert "20 mg/min" in outcome["issue"][0]["diagnostics"]


def test_the_cli_prints_nothing_on_stderr_for_an_order_within_the_labels() -> None:
    run = run_cli("map", "order", str(EXAMPLES / "orders" / "ed-migraine-rescue.json"),
                  "--protocols", str(EXAMPLES / "protocols"))
    assert (run.code, run.err) == (0, "")


def test_validate_accepts_the_detected_issue() -> None:
    mapped = _map(PROTOCOL, ORDER)
    [issue] = _resources(mapped.bundle, "DetectedIssue")
    outcome = operations.validate(issue)
    assert [i["severity"] for i in outcome["issue"]] == ["information"], outcome

