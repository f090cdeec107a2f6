"""The validation corpus: every valid resource the project has (profile examples, every resource
of the golden Bundles, the exported PlanDefinitions) and invalid variants, each made from a valid
one by a named mutation that breaks one rule, across every profile and rule kind.

The engine's unit test and the cross-check with HAPI both read it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from fhir_migraine import library, operations

ROOT = Path(__file__).resolve().parents[1]
BASE = "https://fhir-migraine.org/fhir/StructureDefinition/"
PROFILES = (
    "migraine-infusion-request", "migraine-bag-medication", "migraine-infusion-group", "migraine-infusion-protocol",
    "migraine-order-weight", "diary-day", "diary-attack", "diary-medication-taken", "diary-oral-intake",
    "diary-infusion-received",
)
KINDS = ("cardinality", "fixed", "pattern", "binding", "slicing", "invariant", "type", "unknown", "reference")


@dataclass(frozen=True)
class Case:
    """One resource to validate: against which profile, whether it is valid, which rule it breaks."""

    id: str
    profile_id: str | None  # None: a Bundle, validated against the profiles its entries declare
    kind: str | None
    resource: dict[str, Any]
    expected_valid: bool
    mutation: str = ""

    @property
    def profile(self) -> str | None:
        return BASE + self.profile_id if self.profile_id else None


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _profile_of(resource: dict[str, Any]) -> str:
    return resource["meta"]["profile"][0].removeprefix(BASE)


@lru_cache(maxsize=1)
def valid_resources() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(name, resource) of every valid resource of the project."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted((ROOT / "profiles" / "examples").glob("*.json")):
        found.append((f"example {path.stem}", _json(path)))
    bundles = sorted((ROOT / "examples" / "bundles").glob("*.bundle.json")) + [ROOT / "examples" / "diary" / "month.bundle.json"]
    for path in bundles:
        for i, entry in enumerate(_json(path)["entry"]):
            found.append((f"golden {path.name.split('.')[0]} entry {i}", entry["resource"]))
    for path in sorted((ROOT / "examples" / "protocols").glob("*.yaml")):
        found.append((f"exported {path.stem}", operations.export_protocol(library.read_protocol_file(path))))
    return tuple(found)


def _example(profile_id: str) -> dict[str, Any]:
    kind = {"migraine-infusion-request": "MedicationRequest", "migraine-bag-medication": "Medication",
            "migraine-infusion-group": "RequestGroup", "migraine-infusion-protocol": "PlanDefinition"}.get(profile_id, "Observation")
    return _json(ROOT / "profiles" / "examples" / f"{kind}-{profile_id}-example.json")


def _push_request() -> dict[str, Any]:
    """A push MedicationRequest (the example is a bag): the ED rescue antiemetic."""
    bundle = _json(ROOT / "examples" / "bundles" / "ed-migraine-rescue.bundle.json")
    return next(e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "MedicationRequest" and "medicationCodeableConcept" in e["resource"])


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """Set the element at a dotted path (list indexes as numbers)."""
    def change(resource: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = resource
        for part in parents:
            node = node[part]
        node[last] = copy.deepcopy(value)
    return change


def _drop(path: str) -> Mutation:
    def change(resource: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = resource
        for part in parents:
            node = node[part]
        del node[last]
    return change


def _do(function: Callable[[dict[str, Any]], Any]) -> Mutation:
    def change(resource: dict[str, Any]) -> None:
        function(resource)
    return change


def _component(resource: dict[str, Any], code: str) -> dict[str, Any]:
    return next(c for c in resource["component"] if c["code"]["coding"][0]["code"] == code)


SNOMED = "http://snomed.info/sct"
DIARY_CS = "https://fhir-migraine.org/fhir/CodeSystem/migraine-diary"

# (id, profile, kind, mutation, what it does); the base resource is the profile's example unless
# the id says "push".
MUTATIONS: list[tuple[str, str, str, Mutation, str]] = [
    # diary-attack
    ("attack-without-subject", "diary-attack", "cardinality", _drop("subject"), "subject is 1..1"),
    ("attack-without-category", "diary-attack", "cardinality", _drop("category"), "category is 1..* with the survey slice"),
    ("attack-symptom-outside-value-set", "diary-attack", "binding",
     _do(lambda r: _component(r, "associated-symptom")["valueCodeableConcept"].update(coding=[{"system": SNOMED, "code": "386661006"}])),
     "a symptom coded as fever (not in diary-symptom)"),
    ("attack-intensity-11", "diary-attack", "invariant", _do(lambda r: _component(r, "72514-3").update(valueInteger=11)), "mig-att-2"),
    ("attack-intensity-negative", "diary-attack", "invariant", _do(lambda r: _component(r, "72514-3").update(valueInteger=-1)), "mig-att-2"),
    ("attack-ends-before-it-starts", "diary-attack", "invariant",
     _do(lambda r: r["effectivePeriod"].update(end="2000-01-01T00:00:00Z")), "mig-att-1"),
    ("attack-two-peak-intensities", "diary-attack", "slicing",
     _do(lambda r: r["component"].append(copy.deepcopy(_component(r, "72514-3")))), "peakIntensity slice is 0..1"),
    ("attack-unknown-component", "diary-attack", "slicing",
     _do(lambda r: r["component"].append({"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "valueQuantity": {"value": 80}})),
     "component slicing is closed"),
    ("attack-effective-as-datetime", "diary-attack", "type",
     _do(lambda r: r.update(effectiveDateTime=r.pop("effectivePeriod")["start"])), "effective[x] must be a Period"),
    ("attack-unknown-element", "diary-attack", "unknown", _set("severity", "high"), "Observation has no 'severity'"),
    ("attack-code-not-headache", "diary-attack", "pattern",
     _set("code", {"coding": [{"system": SNOMED, "code": "37796009"}]}), "code pattern is SNOMED 25064002"),
    ("attack-status-not-a-status", "diary-attack", "binding", _set("status", "done"), "Observation.status required binding"),
    ("attack-intensity-as-string", "diary-attack", "type", _do(lambda r: _component(r, "72514-3").update(valueInteger="7")),
     "valueInteger holds a string"),
    ("attack-start-not-a-datetime", "diary-attack", "type", _set("effectivePeriod.start", "2026-11-20 06:30"),
     "not a FHIR dateTime"),
    # diary-day
    ("day-without-value-or-absence", "diary-day", "invariant", _drop("valueBoolean"), "valueBoolean or dataAbsentReason"),
    ("day-value-as-string", "diary-day", "type", _do(lambda r: r.update(valueString=str(r.pop("valueBoolean")))),
     "value[x] must be boolean"),
    ("day-without-performer", "diary-day", "cardinality", _drop("performer"), "performer is 1..1"),
    ("day-identifier-of-another-system", "diary-day", "slicing", _set("identifier.0.system", "urn:example:other"),
     "the diary identifier slice is 1..1"),
    ("day-date-not-a-date", "diary-day", "type", _set("effectiveDateTime", "2026-13-45"), "not a dateTime"),
    ("day-two-performers", "diary-day", "cardinality", _do(lambda r: r["performer"].append(copy.deepcopy(r["performer"][0]))),
     "performer is 1..1"),
    ("day-unknown-element", "diary-day", "unknown", _set("mood", "fine"), "Observation has no 'mood'"),
    # diary-medication-taken
    ("medication-without-dose", "diary-medication-taken", "slicing",
     _do(lambda r: r.update(component=[c for c in r["component"] if c["code"]["coding"][0]["code"] != "medication-dose"])),
     "the dose slice is 1..1"),
    ("medication-route-outside-value-set", "diary-medication-taken", "binding",
     _do(lambda r: _component(r, "medication-route")["valueCodeableConcept"].update(coding=[{"system": SNOMED, "code": "447694001"}])),
     "a route not in diary-medication-route (respiratory tract)"),
    ("medication-dose-as-string", "diary-medication-taken", "type",
     _do(lambda r: _component(r, "medication-dose").update(valueString="5 mg") or _component(r, "medication-dose").pop("valueQuantity")),
     "the dose is a Quantity"),
    ("medication-without-drug", "diary-medication-taken", "cardinality", _drop("valueCodeableConcept"), "the drug is 1..1"),
    ("medication-code-not-medication-taken", "diary-medication-taken", "pattern",
     _set("code", {"coding": [{"system": SNOMED, "code": "25064002"}]}), "code pattern"),
    # diary-oral-intake
    ("drink-volume-in-mg", "diary-oral-intake", "binding", _set("valueQuantity", {"value": 500, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}),
     "volume units mL or L"),
    ("drink-without-product", "diary-oral-intake", "slicing", _set("component", [{"code": {"coding": [{"system": DIARY_CS, "code": "infusion-protocol"}]}, "valueString": "x"}]),
     "the product slice is 1..1 and the slicing closed"),
    ("drink-volume-not-a-number", "diary-oral-intake", "type", _set("valueQuantity.value", "500"), "decimal"),
    ("drink-unknown-element-in-component", "diary-oral-intake", "unknown", _set("component.0.brand", "x"), "component has no 'brand'"),
    ("drink-without-volume", "diary-oral-intake", "cardinality", _drop("valueQuantity"), "valueQuantity is 1..1"),
    # diary-infusion-received
    ("infusion-value-not-boolean", "diary-infusion-received", "type", _set("valueBoolean", "yes"), "boolean"),
    ("infusion-unknown-component", "diary-infusion-received", "slicing",
     _do(lambda r: r["component"].append({"code": {"coding": [{"system": DIARY_CS, "code": "hydration-product"}]}, "valueString": "x"})),
     "closed slicing"),
    ("infusion-without-subject", "diary-infusion-received", "cardinality", _drop("subject"), "subject is 1..1"),
    ("infusion-code-not-infusion", "diary-infusion-received", "pattern",
     _set("code", {"coding": [{"system": DIARY_CS, "code": "medication-taken"}]}), "code pattern"),
    # migraine-order-weight
    ("weight-code-not-body-weight", "migraine-order-weight", "pattern",
     _set("code", {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]}), "LOINC 29463-7 pattern (8302-2 is height)"),
    ("weight-in-mg", "migraine-order-weight", "binding",
     _set("valueQuantity", {"value": 62, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}), "kg, g or [lb_av]"),
    ("weight-without-vital-signs-category", "migraine-order-weight", "cardinality", _drop("category"), "category vital-signs"),
    ("weight-effective-as-period", "migraine-order-weight", "type",
     _do(lambda r: r.update(effectivePeriod={"start": r.pop("effectiveDateTime")})), "effective[x] dateTime"),
    ("weight-unknown-element", "migraine-order-weight", "unknown", _set("bmi", 22), "Observation has no 'bmi'"),
    # migraine-infusion-request (the example is a bag; "push" cases start from the ED antiemetic)
    ("request-intent-plan", "migraine-infusion-request", "fixed", _set("intent", "plan"), "intent fixed to order"),
    ("request-without-requester", "migraine-infusion-request", "cardinality", _drop("requester"), "requester 1..1"),
    ("request-two-dosage-instructions", "migraine-infusion-request", "cardinality",
     _do(lambda r: r["dosageInstruction"].append(copy.deepcopy(r["dosageInstruction"][0]))), "dosageInstruction 1..1"),
    ("request-route-oral", "migraine-infusion-request", "binding",
     _set("dosageInstruction.0.route", {"coding": [{"system": SNOMED, "code": "26643006"}]}), "migraine-infusion-route"),
    ("request-without-ordered-dose", "migraine-infusion-request", "slicing",
     _do(lambda r: [d.pop("type") for d in r["dosageInstruction"][0]["doseAndRate"]]), "the ordered slice is 1..1"),
    ("push-request-without-dose", "migraine-infusion-request", "invariant",
     _do(lambda r: r["dosageInstruction"][0]["doseAndRate"][0].pop("doseQuantity")), "mig-mr-2"),
    ("push-request-reason-as-text", "migraine-infusion-request", "invariant", _set("reasonCode", [{"text": "migraine"}]), "mig-mr-4"),
    ("push-request-medication-not-rxnorm-no-text", "migraine-infusion-request", "invariant",
     _set("medicationCodeableConcept", {"coding": [{"system": SNOMED, "code": "372776000"}]}), "mig-mr-3"),
    ("request-bag-not-contained", "migraine-infusion-request", "reference", _set("medicationReference", {"reference": "#bag-missing"}),
     "a #reference to no contained resource"),
    ("request-unknown-element", "migraine-infusion-request", "unknown", _set("dosageInstruction.0.speed", "fast"), "Dosage has no 'speed'"),
    ("request-status-not-a-status", "migraine-infusion-request", "binding", _set("status", "ongoing"), "medicationrequest-status"),
    ("request-without-group-identifier", "migraine-infusion-request", "cardinality", _drop("groupIdentifier"), "groupIdentifier 1..1"),
    ("request-authored-not-a-datetime", "migraine-infusion-request", "type", _set("authoredOn", "yesterday"), "dateTime"),
    ("request-subject-practitioner", "migraine-infusion-request", "reference", _set("subject", {"reference": "Practitioner/9"}),
     "Reference(Patient)"),
    # migraine-bag-medication
    ("bag-without-ingredients", "migraine-bag-medication", "cardinality", _drop("ingredient"), "ingredient 1..*"),
    ("bag-without-amount", "migraine-bag-medication", "cardinality", _drop("amount"), "amount 1..1"),
    ("bag-ingredient-by-reference", "migraine-bag-medication", "type",
     _do(lambda r: r["ingredient"][0].update(itemReference={"reference": "Substance/1"}) or r["ingredient"][0].pop("itemCodeableConcept")),
     "item[x] CodeableConcept only"),
    ("bag-unknown-element", "migraine-bag-medication", "unknown", _set("ingredient.0.concentration", "0.9%"), "no 'concentration'"),
    # migraine-infusion-group
    ("group-without-actions", "migraine-infusion-group", "cardinality", _drop("action"), "action 1..*"),
    ("group-action-without-prefix", "migraine-infusion-group", "cardinality", _drop("action.0.prefix"), "action.prefix 1..1"),
    ("group-intent-plan", "migraine-infusion-group", "fixed", _set("intent", "plan"), "intent fixed to order"),
    ("group-identifier-of-another-system", "migraine-infusion-group", "slicing", _set("identifier.0.system", "urn:example:other"),
     "the order identifier slice is 1..1"),
    ("group-action-resource-patient", "migraine-infusion-group", "reference", _set("action.0.resource", {"reference": "Patient/123"}),
     "Reference(MedicationRequest)"),
    ("group-session-duration-as-string", "migraine-infusion-group", "type",
     _set("extension.0", {"url": BASE + "minimum-session-duration", "valueString": "35 min"}), "the extension's value is a Duration"),
    # migraine-infusion-protocol
    ("protocol-type-not-order-set", "migraine-infusion-protocol", "pattern",
     _set("type", {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/plan-definition-type", "code": "clinical-protocol"}]}),
     "type pattern order-set"),
    ("protocol-without-url", "migraine-infusion-protocol", "cardinality", _drop("url"), "url 1..1"),
    ("protocol-action-without-definition", "migraine-infusion-protocol", "cardinality", _drop("action.0.definitionCanonical"),
     "action.definitionCanonical 1..1"),
    ("protocol-intent-outside-value-set", "migraine-infusion-protocol", "binding",
     _set("useContext.0.valueCodeableConcept", {"coding": [{"system": SNOMED, "code": "37796009"}]}), "migraine-protocol-intent"),
    ("protocol-status-not-a-status", "migraine-infusion-protocol", "binding", _set("status", "published"), "publication-status"),
]


def _bundle_cases() -> list[Case]:
    """Transaction Bundles whose references must resolve inside the Bundle."""
    diary = _json(ROOT / "examples" / "diary" / "month.bundle.json")
    day = next(e for e in diary["entry"] if e["resource"].get("hasMember"))
    members = {m["reference"] for m in day["resource"]["hasMember"]}
    entries = [day] + [e for e in diary["entry"] if e["fullUrl"] in members]
    valid = {"resourceType": "Bundle", "type": "transaction", "entry": copy.deepcopy(entries)}
    broken = {"resourceType": "Bundle", "type": "transaction", "entry": copy.deepcopy(entries[:1])}
    return [
        Case("bundle-day-with-its-members", None, None, valid, True, "a diary day and its members"),
        Case("bundle-member-not-in-bundle", None, "reference", broken, False, "hasMember points at a urn:uuid that is not an entry"),
    ]


def cases() -> list[Case]:
    found = [Case(f"valid: {name}", _profile_of(resource), None, resource, True) for name, resource in valid_resources()]
    for case_id, profile_id, kind, mutate, what in MUTATIONS:
        resource = copy.deepcopy(_push_request() if case_id.startswith("push-") else _example(profile_id))
        mutate(resource)
        found.append(Case(case_id, profile_id, kind, resource, False, what))
    return found + _bundle_cases()
