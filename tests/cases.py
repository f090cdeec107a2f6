"""A small valid protocol and order, and the bad-input cases built from them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROTOCOL: dict[str, Any] = {
    "id": "test-rescue",
    "version": "1.0",
    "title": "Test rescue",
    "intent": "acute",
    "indication": {"system": "icd-10-cm", "code": "G43.909"},
    "applies_to": {"min_age": "18 a", "min_weight": "40 kg"},
    "min_duration": "30 min",
    "schedule": {"kind": "once"},
    "steps": [
        {
            "id": "fluids",
            "type": "infusion",
            "base": {"drug": "sodium chloride 0.9%", "volume": "1000 mL"},
            "additives": [{"drug": "magnesium sulfate", "dose": "2 g", "max_dose": "4 g"}],
            "rate": "500 mL/h",
            "max_rate": "1000 mL/h",
        },
        {"id": "antiemetic", "type": "push", "drug": "metoclopramide", "dose": "10 mg", "over": "2 min", "max_dose": "20 mg"},
        {"id": "valproate", "type": "push", "drug": "valproate", "dose": "15 mg/kg", "over": "15 min", "max_dose": "1000 mg"},
    ],
}

ORDER: dict[str, Any] = {
    "order_id": "t-0001",
    "protocol": "test-rescue",
    "patient": {"reference": "Patient/123"},
    "requester": {"reference": "Practitioner/9"},
    "start": "2026-12-01T09:00:00Z",
    "authored": "2026-12-01T08:45:00Z",
    "weight": "60 kg",
    "age": "40 a",
}


@dataclass(frozen=True)
class Case:
    """One bad input: which document it breaks, how, and the JSON path the error must name."""

    id: str
    # "protocol" (the protocol is refused), "order" (the order is), or "protocol-ordered" (the
    # protocol is changed and stored, and an order of it is refused)
    target: str
    change: Callable[[dict[str, Any]], None]
    path: str


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


def _status_migrainosus_without_indication(doc: dict[str, Any]) -> None:
    doc["intent"] = "status-migrainosus"
    del doc["indication"]


def _duplicate_step(doc: dict[str, Any]) -> None:
    doc["steps"].append(copy.deepcopy(doc["steps"][1]))


def _limits(value: Any, schedule: dict[str, Any] | None = None) -> Callable[[dict[str, Any]], None]:
    """The antiemetic (metoclopramide 10 mg) declares ``value`` as limits, under ``schedule`` if given."""

    def change(doc: dict[str, Any]) -> None:
        doc["steps"][1]["limits"] = value
        if schedule is not None:
            doc["schedule"] = schedule

    return change


Q8H_X9 = {"kind": "repeat", "every": 8, "unit": "h", "count": 9}


def _dhe_every_8h(doc: dict[str, Any]) -> None:
    """DHE 1 mg IV q8h x 9 (3 mg/24 h, 9 mg a week) with no off_label: above the label."""
    doc["schedule"] = Q8H_X9
    doc["steps"].append({"id": "dhe", "type": "push", "drug": "dihydroergotamine", "dose": "1 mg", "over": "3 min"})


def _dhe_test_dose_slip(doc: dict[str, Any]) -> None:
    """DHE 0.5 mg q8h x 3 with a first (test) dose of 0.05 mg: a decimal slip."""
    doc["schedule"] = {"kind": "repeat", "every": 8, "unit": "h", "count": 3}
    doc["steps"].append({"id": "dhe", "type": "push", "drug": "dihydroergotamine", "dose": "0.5 mg",
                         "first_dose": "0.05 mg", "over": "3 min"})


def _test_dose_above_limit(doc: dict[str, Any]) -> None:
    """A first dose of 1 mg where the step allows 0.5 mg per administration."""
    doc["schedule"] = {"kind": "repeat", "every": 8, "unit": "h", "count": 3}
    doc["steps"].append({"id": "dhe", "type": "push", "drug": "dihydroergotamine", "dose": "0.5 mg",
                         "first_dose": "1 mg", "over": "3 min", "limits": {"per_administration": "0.5 mg"}})


def _second_additive_limits(doc: dict[str, Any]) -> None:
    bag = doc["steps"][0]
    bag["additives"][0]["limits"] = {"per_administration": "4 g"}
    bag["additives"].append({"drug": "thiamine", "dose": "100 mg", "limits": {"per_administration": "200 mg"}})


BAD_INPUTS = [
    Case("limits-unit-not-fitting-dose", "protocol", _limits({"per_period": "2 mL/24 h"}),
         "$.steps[1].limits.per_period"),
    Case("limits-per-period-unreadable", "protocol", _limits({"per_period": "20 mg per day"}),
         "$.steps[1].limits.per_period"),
    Case("limits-per-period-over-a-volume", "protocol", _limits({"per_period": "20 mg/2 mL"}),
         "$.steps[1].limits.per_period"),
    Case("limits-empty", "protocol", _limits({}), "$.steps[1].limits"),
    Case("limits-unknown-key", "protocol", _limits({"per_day": "20 mg"}), "$.steps[1].limits.per_day"),
    Case("limits-per-administration-above-per-period", "protocol",
         _limits({"per_administration": "20 mg", "per_period": "15 mg/24 h"}), "$.steps[1].limits.per_administration"),
    Case("limits-per-period-above-per-course", "protocol", _limits({"per_period": "40 mg/24 h", "per_course": "30 mg"}),
         "$.steps[1].limits.per_period"),
    Case("limits-per-administration-below-dose", "protocol", _limits({"per_administration": "5 mg"}),
         "$.steps[1].limits.per_administration"),
    Case("schedule-above-declared-per-period", "protocol", _limits({"per_period": "20 mg/24 h"}, Q8H_X9),
         "$.steps[1].limits.per_period"),
    Case("schedule-above-declared-per-course", "protocol", _limits({"per_course": "60 mg"}, Q8H_X9),
         "$.steps[1].limits.per_course"),
    Case("regimen-above-label-without-off-label", "protocol", _dhe_every_8h, "$.steps[3]"),
    Case("off-label-without-approver", "protocol", _set(["steps", 1, "off_label"], {"reason": "trial"}),
         "$.steps[1].off_label.approved_by"),
    Case("exception-for-unknown-rule", "protocol",
         _set(["steps", 1, "exceptions"], [{"rule": "dose", "reason": "x", "approved_by": "P&T"}]),
         "$.steps[1].exceptions[0].rule"),
    Case("exception-declared-twice", "protocol",
         _set(["steps", 1, "exceptions"], [{"rule": "rate", "reason": "x", "approved_by": "P&T"}] * 2),
         "$.steps[1].exceptions[1].rule"),
    Case("first-dose-below-plausible-minimum", "protocol", _dhe_test_dose_slip, "$.steps[3].first_dose"),
    Case("first-dose-above-limit-per-administration", "protocol", _test_dose_above_limit, "$.steps[3].first_dose"),
    Case("dose-below-plausible-minimum", "protocol", _set(["steps", 1, "dose"], "0.1 mg"), "$.steps[1].dose"),
    Case("additive-below-plausible-minimum", "protocol", _set(["steps", 0, "additives", 0, "dose"], "20 mg"),
         "$.steps[0].additives[0].dose"),
    Case("two-additives-with-limits", "protocol", _second_additive_limits, "$.steps[0].additives[1].limits"),
    Case("override-below-plausible-minimum", "order", _set(["overrides"], {"antiemetic": {"dose": "0.5 mg"}}),
         "$.overrides.antiemetic.dose"),
    Case("protocol-steps-wrong-type", "protocol", _set(["steps"], "fluids"), "$.steps"),
    Case("protocol-count-wrong-type", "protocol", _set(["schedule"], {"kind": "repeat", "every": 8, "unit": "h", "count": "nine"}), "$.schedule.count"),
    Case("order-start-wrong-type", "order", _set(["start"], 20261201), "$.start"),
    Case("order-start-not-an-instant", "order", _set(["start"], "2026-12-01"), "$.start"),
    Case("protocol-step-missing-dose", "protocol", _delete(["steps", 1, "dose"]), "$.steps[1].dose"),
    Case("protocol-missing-steps", "protocol", _delete(["steps"]), "$.steps"),
    Case("order-missing-patient", "order", _delete(["patient"]), "$.patient"),
    Case("order-missing-order-id", "order", _delete(["order_id"]), "$.order_id"),
    Case("protocol-unknown-field", "protocol", _set(["steps", 1, "dosage"], "10 mg"), "$.steps[1].dosage"),
    Case("unknown-drug", "protocol", _set(["steps", 1, "drug"], "unobtainium"), "$.steps[1].drug"),
    Case("unknown-additive-drug", "protocol", _set(["steps", 0, "additives", 0, "drug"], "kryptonite"), "$.steps[0].additives[0].drug"),
    Case("unparseable-quantity", "protocol", _set(["steps", 1, "dose"], "ten mg"), "$.steps[1].dose"),
    Case("unknown-unit", "protocol", _set(["steps", 1, "dose"], "10 mgs"), "$.steps[1].dose"),
    Case("unparseable-weight", "order", _set(["weight"], "heavy"), "$.weight"),
    Case("volume-given-as-dose", "protocol", _set(["steps", 1, "dose"], "10 mL"), "$.steps[1].dose"),
    Case("dose-given-as-volume", "protocol", _set(["steps", 0, "base", "volume"], "1000 mg"), "$.steps[0].base.volume"),
    Case("mass-given-as-rate", "protocol", _set(["steps", 0, "rate"], "500 mg"), "$.steps[0].rate"),
    Case("weight-in-mg-per-kg", "order", _set(["weight"], "60 mg/kg"), "$.weight"),
    Case("weight-in-milligrams", "order", _set(["weight"], "60000000 mg"), "$.weight"),
    Case("override-volume-as-dose", "order", _set(["overrides"], {"antiemetic": {"dose": "5 mL"}}), "$.overrides.antiemetic.dose"),
    Case("per-kg-dose-without-weight", "order", _delete(["weight"]), "$.weight"),
    Case("override-above-max-dose", "order", _set(["overrides"], {"antiemetic": {"dose": "25 mg"}}), "$.overrides.antiemetic.dose"),
    Case("additive-override-above-max", "order", _set(["overrides"], {"fluids": {"additives": {"magnesium sulfate": "5 g"}}}), "$.overrides.fluids.additives['magnesium sulfate']"),
    Case("absolute-override-of-a-per-kg-step-above-its-ceiling", "order", _set(["overrides"], {"valproate": {"dose": "1200 mg"}}), "$.overrides.valproate.dose"),
    Case("weight-below-protocol-minimum", "order", _set(["weight"], "4 kg"), "$.weight"),
    Case("age-below-protocol-minimum", "order", _set(["age"], "12 a"), "$.age"),
    Case("age-missing-for-protocol-minimum", "order", _delete(["age"]), "$.age"),
    Case("age-as-a-mass", "order", _set(["age"], "30 kg"), "$.age"),
    Case("age-in-hours", "order", _set(["age"], "30 h"), "$.age"),
    Case("age-implausible", "order", _set(["age"], "300 a"), "$.age"),
    Case("applies-to-min-weight-above-max", "protocol", _set(["applies_to"], {"min_weight": "100 kg", "max_weight": "50 kg"}), "$.applies_to.min_weight"),
    Case("applies-to-unknown-limit", "protocol", _set(["applies_to"], {"min_height": "150 cm"}), "$.applies_to.min_height"),
    Case("applies-to-age-in-days", "protocol", _set(["applies_to"], {"min_age": "6570 d"}), "$.applies_to.min_age"),
    Case("rounding-as-a-volume", "protocol", _set(["steps", 2, "rounding"], "5 mL"), "$.steps[2].rounding"),
    Case("rounding-not-of-the-dose", "protocol", _set(["steps", 2, "rounding"], "1 meq"), "$.steps[2].rounding"),
    Case("rounding-above-max-dose", "protocol", _set(["steps", 2, "rounding"], "5000 mg"), "$.steps[2].rounding"),
    Case("duration-override-below-min-duration", "order", _set(["overrides"], {"fluids": {"duration": "10 min"}}), "$.overrides.fluids.duration"),
    Case("rate-override-above-max-rate", "order", _set(["overrides"], {"fluids": {"rate": "1500 mL/h"}}), "$.overrides.fluids.rate"),
    Case("rate-override-below-min-duration", "order", _set(["overrides"], {"fluids": {"rate": "2500 mL/h"}}), "$.overrides.fluids.rate"),
    Case("bag-faster-than-its-max-rate", "protocol", _set(["steps", 0, "max_rate"], "250 mL/h"), "$.steps[0].rate"),
    Case("bag-shorter-than-min-duration", "protocol", _set(["min_duration"], "3 h"), "$.steps[0].rate"),
    Case("max-rate-as-a-mass", "protocol", _set(["steps", 0, "max_rate"], "5 mg"), "$.steps[0].max_rate"),
    Case("max-rate-on-a-push", "protocol", _set(["steps", 1, "max_rate"], "5 mL/h"), "$.steps[1].max_rate"),
    Case("instructions-empty", "protocol", _set(["steps", 0, "instructions"], []), "$.steps[0].instructions"),
    Case("instruction-blank", "protocol", _set(["steps", 1, "instructions"], ["  "]), "$.steps[1].instructions[0]"),
    Case("instructions-not-a-list", "protocol", _set(["steps", 1, "instructions"], "no bolus"), "$.steps[1].instructions"),
    Case("schedule-count-zero", "protocol", _set(["schedule"], {"kind": "interval", "every": 3, "unit": "wk", "count": 0}), "$.schedule.count"),
    Case("schedule-negative-interval", "protocol", _set(["schedule"], {"kind": "interval", "every": -3, "unit": "wk", "count": 6}), "$.schedule.every"),
    Case("schedule-interval-in-hours", "protocol", _set(["schedule"], {"kind": "interval", "every": 3, "unit": "h", "count": 6}), "$.schedule.unit"),
    Case("duplicate-step-ids", "protocol", _duplicate_step, "$.steps[3].id"),
    Case("unknown-protocol", "order", _set(["protocol"], "no-such-protocol"), "$.protocol"),
    Case("override-unknown-step", "order", _set(["overrides"], {"sedation": {"dose": "5 mg"}}), "$.overrides.sedation"),
    Case("override-not-for-step-type", "order", _set(["overrides"], {"fluids": {"dose": "5 mg"}}), "$.overrides.fluids.dose"),
    Case("max-dose-below-dose", "protocol", _set(["steps", 1, "max_dose"], "5 mg"), "$.steps[1].max_dose"),
    Case("infusion-without-rate-or-duration", "protocol", _delete(["steps", 0, "rate"]), "$.steps[0]"),
    Case("unknown-indication", "protocol", _set(["indication"], {"system": "icd-10-cm", "code": "J45.909"}), "$.indication.code"),
    Case("patient-reference-and-identifier", "order", _set(["patient"], {"reference": "Patient/1", "identifier": {"system": "urn:x", "value": "1"}}), "$.patient"),
    Case("bad-step-id", "protocol", _set(["steps", 1, "id"], "Anti Emetic"), "$.steps[1].id"),
    Case("order-start-offset-beyond-14h", "order", _set(["start"], "2026-12-01T09:00:00+23:59"), "$.start"),
    Case("order-authored-offset-beyond-14h", "order", _set(["authored"], "2026-12-01T08:45:00-14:30"), "$.authored"),
    Case("schedule-count-beyond-limit", "protocol", _set(["schedule"], {"kind": "repeat", "every": 8, "unit": "h", "count": 61}), "$.schedule.count"),
    Case("schedule-count-fractional", "protocol", _set(["schedule"], {"kind": "repeat", "every": 8, "unit": "h", "count": 9.5}), "$.schedule.count"),
    Case("steps-beyond-limit", "protocol", lambda p: p["steps"].extend(p["steps"][1] | {"id": f"s{i}"} for i in range(18)), "$.steps"),
    Case("additives-beyond-limit", "protocol", lambda p: p["steps"][0]["additives"].extend({"drug": "thiamine", "dose": "1 mg"} for _ in range(12)), "$.steps[0].additives"),
    Case("dose-text-beyond-limit", "protocol", _set(["steps", 1, "dose"], "10" + " " * 100 + "mg"), "$.steps[1].dose"),
    Case("unit-beyond-limit", "protocol", _set(["steps", 1, "dose"], {"value": 10, "unit": "m" * 33}), "$.steps[1].dose.unit"),
    Case("overrides-beyond-limit", "order", _set(["overrides"], {f"s{i}": {"dose": "1 mg"} for i in range(21)}), "$.overrides"),
    Case("override-additives-beyond-limit", "order", _set(["overrides"], {"fluids": {"additives": {f"d{i}": "1 g" for i in range(13)}}}), "$.overrides.fluids.additives"),
    Case("protocol-status-unknown", "protocol", _set(["status"], "published"), "$.status"),
    Case("protocol-priority-unknown", "protocol", _set(["priority"], "high"), "$.priority"),
    Case("status-migrainosus-indication-without-status-migrainosus", "protocol", _set(["intent"], "status-migrainosus"),
         "$.indication.code"),
    Case("status-migrainosus-without-indication", "protocol", _status_migrainosus_without_indication, "$.indication"),
    Case("draft-protocol-ordered", "protocol-ordered", _set(["status"], "draft"), "$.protocol"),
    Case("retired-protocol-ordered", "protocol-ordered", _set(["status"], "retired"), "$.protocol"),
    Case("order-protocol-version-unknown", "order", _set(["protocol_version"], "9.9"), "$.protocol_version"),
    Case("order-protocol-version-malformed", "order", _set(["protocol_version"], "1 0"), "$.protocol_version"),
    Case("order-priority-unknown", "order", _set(["priority"], "whenever"), "$.priority"),
    Case("order-category-discharge", "order", _set(["category"], "discharge"), "$.category"),
    Case("order-encounter-not-an-encounter", "order", _set(["encounter"], {"reference": "Patient/1"}), "$.encounter.reference"),
    Case("weight-source-unknown", "order", _set(["weight"], {"quantity": "60 kg", "source": "guessed"}), "$.weight.source"),
    Case("weight-measured-at-not-an-instant", "order", _set(["weight"], {"quantity": "60 kg", "measured_at": "yesterday"}),
         "$.weight.measured_at"),
    Case("weight-record-unknown-field", "order", _set(["weight"], {"quantity": "60 kg", "scale": "ward 3"}), "$.weight.scale"),
    Case("weight-record-in-mg-per-kg", "order", _set(["weight"], {"quantity": "60 mg/kg"}), "$.weight.quantity"),
    Case("weight-record-without-quantity-is-a-bad-quantity", "order", _set(["weight"], {"value": 60, "source": "stated"}),
         "$.weight"),
    Case("start-beyond-limit", "order", _set(["start"], "2026-12-01T09:00:00.123456789" + "0" * 20 + "Z"), "$.start"),
]


def _repeat(doc: dict[str, Any]) -> None:
    doc["schedule"] = {"kind": "repeat", "every": 8, "unit": "h", "count": 3}


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        for each in changes:
            each(doc)

    return change


# Placements (before/after), "as needed" rules and first doses.
BAD_INPUTS += [
    Case("placed-before-unknown-step", "protocol", _set(["steps", 1, "before"], {"step": "dhe", "by": "30 min"}), "$.steps[1].before.step"),
    Case("placed-after-itself", "protocol", _set(["steps", 1, "after"], {"step": "antiemetic", "by": "5 min"}), "$.steps[1].after.step"),
    Case("placements-form-a-cycle", "protocol", _both(_set(["steps", 1, "after"], {"step": "valproate"}),
                                                      _set(["steps", 2, "after"], {"step": "antiemetic"})), "$.steps[1].after.step"),
    Case("placed-before-and-after", "protocol", _both(_set(["steps", 1, "before"], {"step": "valproate"}),
                                                      _set(["steps", 1, "after"], {"step": "fluids"})), "$.steps[1].after"),
    Case("placed-after-the-end-of-a-step-without-length", "protocol",
         _both(_delete(["steps", 1, "over"]), _set(["steps", 2, "after"], {"step": "antiemetic", "from": "end"})), "$.steps[2].after.from"),
    Case("placement-offset-not-a-duration", "protocol", _set(["steps", 1, "before"], {"step": "valproate", "by": "30 mg"}), "$.steps[1].before.by"),
    Case("placement-from-unknown-edge", "protocol", _set(["steps", 1, "after"], {"step": "fluids", "from": "middle"}), "$.steps[1].after.from"),
    Case("placement-unknown-field", "protocol", _set(["steps", 1, "after"], {"step": "fluids", "at": "1 h"}), "$.steps[1].after.at"),
    Case("prn-unknown-reason", "protocol", _set(["steps", 1, "prn"], {"reason": "boredom"}), "$.steps[1].prn.reason"),
    Case("prn-unknown-field", "protocol", _set(["steps", 1, "prn"], {"reason": "nausea", "why": "x"}), "$.steps[1].prn.why"),
    Case("prn-empty-object", "protocol", _set(["steps", 1, "prn"], {}), "$.steps[1].prn"),
    Case("prn-interval-without-count", "protocol", _set(["steps", 1, "prn"], {"reason": "nausea", "min_interval": "4 h"}), "$.steps[1].prn.min_interval"),
    Case("prn-count-without-interval", "protocol", _set(["steps", 1, "prn"], {"reason": "nausea", "max_count": 2}), "$.steps[1].prn.max_count"),
    Case("prn-interval-not-a-duration", "protocol", _set(["steps", 1, "prn"], {"reason": "nausea", "min_interval": "4 mL", "max_count": 2}), "$.steps[1].prn.min_interval"),
    Case("prn-count-on-a-repeated-schedule", "protocol", _both(_repeat, _set(["steps", 1, "prn"], {"reason": "nausea", "max_count": 1})), "$.steps[1].prn.max_count"),
    Case("prn-pain-level-above-10", "protocol", _set(["steps", 1, "prn"], {"reason": "headache", "when": {"pain_at_least": 11}}), "$.steps[1].prn.when.pain_at_least"),
    Case("first-dose-on-a-single-session", "protocol", _set(["steps", 1, "first_dose"], "5 mg"), "$.steps[1].first_dose"),
    Case("first-dose-above-max-dose", "protocol", _both(_repeat, _set(["steps", 1, "first_dose"], "25 mg")), "$.steps[1].first_dose"),
    Case("first-dose-as-a-volume", "protocol", _both(_repeat, _set(["steps", 1, "first_dose"], "5 mL")), "$.steps[1].first_dose"),
    Case("first-dose-per-kg-for-a-fixed-dose", "protocol", _both(_repeat, _set(["steps", 1, "first_dose"], "0.1 mg/kg")), "$.steps[1].first_dose"),
    Case("first-dose-on-a-monthly-schedule", "protocol",
         _both(_set(["schedule"], {"kind": "interval", "every": 1, "unit": "mo", "count": 3}), _set(["steps", 1, "first_dose"], "5 mg")), "$.steps[1].first_dose"),
    Case("first-dose-on-an-infusion", "protocol", _both(_repeat, _set(["steps", 0, "first_dose"], "5 mg")), "$.steps[0].first_dose"),
]


def broken(case: Case) -> tuple[dict[str, Any], dict[str, Any]]:
    """The protocol and order with the case's change applied to one of them."""
    protocol, order = copy.deepcopy(PROTOCOL), copy.deepcopy(ORDER)
    case.change(protocol if case.target.startswith("protocol") else order)
    return protocol, order
