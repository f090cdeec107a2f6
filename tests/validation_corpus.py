"""The validation corpus: every valid resource the project ships, and invalid ones made from them.

Valid: each profile example (``profiles/examples``), each resource of each golden Bundle
(``examples/bundles``, ``examples/diary/month.bundle.json``; a MedicationRequest keeps its
contained Medication), the PlanDefinition exported from each example protocol, and two small
transaction Bundles whose ``urn:uuid`` references resolve. Invalid: each a copy of a valid
resource with one small, named mutation that breaks one rule of one kind (``MUTATIONS``).

Everything is built here from the files, so a regenerated example or golden file flows into the
corpus. ``tests/unit/test_validation_corpus.py`` runs it through the engine alone;
``tests/integration/test_validation_crosscheck.py`` runs it through HAPI FHIR and the engine.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fhir_migraine import library, operations
from fhir_migraine.mapping.fhir import DOSE_CEILING_EXT, DOSE_RATE_TYPE, ORDERED_DOSE_EXT, identifiers, references

ROOT = Path(__file__).resolve().parents[1]
CANONICAL_BASE = "https://fhir-migraine.org/fhir/StructureDefinition/"

PROFILE_IDS = (
    "migraine-infusion-request",
    "migraine-bag-medication",
    "migraine-infusion-group",
    "migraine-infusion-protocol",
    "migraine-order-weight",
    "migraine-detected-issue",
    "diary-day",
    "diary-attack",
    "diary-medication-statement",
    "diary-medication-outcome",
    "diary-oral-intake",
    "diary-infusion-received",
    "diary-menstruation",
    "diary-questionnaire-response",
    "diary-midas-score",
    "diary-hit6-score",
)
# The rule kinds (``issue.details.text``) the invalid cases must cover between them.
RULE_KINDS = ("cardinality", "fixed", "pattern", "binding", "slicing", "invariant", "type", "unknown", "reference")

Resource = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One resource to validate against one profile, and what the validators should say.

    ``profile_id`` names the profile the resource is checked against; for a Bundle (checked with
    no profile, each entry against the profiles it declares) it names the profile of the entry
    whose rule the case is about. ``kind`` is the rule kind an invalid case breaks (None when valid).
    """

    id: str
    profile_id: str
    kind: str | None
    resource: Resource
    expected_valid: bool
    mutation_doc: str

    @property
    def canonical(self) -> str:
        return CANONICAL_BASE + self.profile_id

    @property
    def is_bundle(self) -> bool:
        return self.resource.get("resourceType") == "Bundle"

    @property
    def profile(self) -> str | None:
        """The profile to validate against: none for a Bundle (its entries declare theirs)."""
        return None if self.is_bundle else self.canonical


def _read(path: Path) -> Resource:
    return json.loads(path.read_text(encoding="utf-8"))


def _declared_profile(resource: Resource) -> str:
    return resource["meta"]["profile"][0].removeprefix(CANONICAL_BASE)


def _golden_bundle_paths() -> list[Path]:
    return sorted((ROOT / "examples" / "bundles").glob("*.bundle.json")) + [ROOT / "examples" / "diary" / "month.bundle.json"]


# -- the valid resources ---------------------------------------------------------------------------


def _example_path(profile_id: str) -> Path:
    (path,) = (ROOT / "profiles" / "examples").glob(f"*-{profile_id}-example.json")
    return path


def _valid_resources() -> list[tuple[str, Resource]]:
    """(case id, resource) for every valid resource of the project."""
    found = [(f"example-{profile_id}", _read(_example_path(profile_id))) for profile_id in PROFILE_IDS]
    for path in _golden_bundle_paths():
        name = path.name.removesuffix(".bundle.json")
        for number, entry in enumerate(_read(path)["entry"]):
            resource = entry["resource"]
            found.append((f"golden-{name}-entry-{number:02d}-{_declared_profile(resource)}", resource))
    for path in sorted((ROOT / "examples" / "protocols").glob("*.yaml")):
        plan = operations.export_protocol(library.read_protocol_file(path))
        found.append((f"exported-protocol-{path.stem}", plan))
    found.append(("charted-weight-migraine-order-weight", _charted_weight()))
    return found


def _charted_weight() -> Resource:
    """The weight of the DHE example order charted as a vital sign, as a site may ask for."""
    from fhir_migraine.inputs.orders import finder
    from fhir_migraine.mapping.order_settings import OrderSettings

    protocols = finder(library.read_protocols(ROOT / "examples" / "protocols"))
    order = _read(ROOT / "examples" / "orders" / "dhe-repeat.json")
    bundle = operations.map_order(order, protocols, settings=OrderSettings(weight_observation=True))
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")


def _entries_of(path: Path) -> list[Resource]:
    return list(_read(path)["entry"])


def _transaction(entries: list[Resource]) -> Resource:
    return {"resourceType": "Bundle", "type": "transaction", "entry": copy.deepcopy(entries)}


def _diary_day_bundle() -> Resource:
    """A transaction of one diary day (the profile example's date), the Observations it lists and
    what they refer to in turn (an outcome's MedicationStatement)."""
    entries = _entries_of(ROOT / "examples" / "diary" / "month.bundle.json")
    day_date = _read(_example_path("diary-day"))["effectiveDateTime"]
    day = next(e for e in entries
               if e["resource"].get("effectiveDateTime") == day_date and e["resource"].get("hasMember"))
    wanted = {m["reference"] for m in day["resource"]["hasMember"]}
    while True:
        more = wanted | {r for e in entries if e["fullUrl"] in wanted for r in references(e["resource"])}
        if more == wanted:
            break
        wanted = more
    return _transaction([day] + [e for e in entries if e["fullUrl"] in wanted])


def _order_bundle() -> Resource:
    """The golden transaction of the preventive-nutrient order: one MedicationRequest, its group."""
    return _transaction(_entries_of(ROOT / "examples" / "bundles" / "preventive-nutrient.bundle.json"))


# -- the bases of the mutations --------------------------------------------------------------------


def _push_request() -> Resource:
    """A push (medicationCodeableConcept): the antiemetic of the ED rescue order."""
    entries = _entries_of(ROOT / "examples" / "bundles" / "ed-migraine-rescue.bundle.json")
    return next(e["resource"] for e in entries if "medicationCodeableConcept" in e["resource"])


def _bag_request() -> Resource:
    """A bag (medicationReference): the valproate step of the weight-based order."""
    entries = _entries_of(ROOT / "examples" / "bundles" / "valproate-weight-based.bundle.json")
    return next(e["resource"] for e in entries if "medicationReference" in e["resource"]
                and identifiers(e["resource"])[0]["value"].endswith("/valproate"))


def _limited_request() -> Resource:
    """A push with declared limits (maxDosePerPeriod) and an off-label DetectedIssue: the DHE step."""
    entries = _entries_of(ROOT / "examples" / "bundles" / "dhe-repeat.bundle.json")
    return next(e["resource"] for e in entries if "maxDosePerPeriod" in e["resource"].get("dosageInstruction", [{}])[0])


def _base(name: str) -> Resource:
    """The valid resource a mutation starts from: a profile's example, or one named below."""
    named: dict[str, Callable[[], Resource]] = {
        "push-request": _push_request,
        "bag-request": _bag_request,
        "limited-request": _limited_request,
        "diary-day-bundle": _diary_day_bundle,
        "order-bundle": _order_bundle,
    }
    return named[name]() if name in named else _read(_example_path(name))


# -- small edits the mutations are written in ------------------------------------------------------

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
DIARY_CODES = "https://fhir-migraine.org/fhir/CodeSystem/migraine-diary"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DIARY_ID = "https://fhir-migraine.org/fhir/sid/diary"
ORDER_ID = "https://fhir-migraine.org/fhir/sid/order"
SESSION_DURATION = CANONICAL_BASE + "minimum-session-duration"
ORDERED_DOSE = CANONICAL_BASE + "ordered-dose"


def _concept(system: str, code: str) -> Resource:
    return {"coding": [{"system": system, "code": code}]}


def _code_of(component: Resource) -> str:
    return component["code"]["coding"][0]["code"]


def _component(resource: Resource, code: str) -> Resource:
    """The first component whose code is ``code``."""
    return next(c for c in resource["component"] if _code_of(c) == code)


def _drop_components(resource: Resource, code: str) -> None:
    resource["component"] = [c for c in resource["component"] if _code_of(c) != code]


def _duplicate_component(resource: Resource, code: str) -> None:
    resource["component"].append(copy.deepcopy(_component(resource, code)))


def _retype(element: Resource, old_key: str, new_key: str, value: Any) -> None:
    """Replace the choice element ``old_key`` by ``new_key`` holding ``value``."""
    del element[old_key]
    element[new_key] = value


def _entry(bundle: Resource, resource_type: str) -> Resource:
    return next(e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)


# -- the mutations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """A named change to a copy of ``_base(base)`` that breaks one rule of ``kind`` in ``profile_id``."""

    case_id: str
    profile_id: str
    kind: str
    base: str
    change: Callable[[Resource], None]
    doc: str


MUTATIONS: list[Mutation] = []


Change = Callable[[Resource], None]


def breaks(case_id: str, profile_id: str, kind: str, *, base: str | None = None) -> Callable[[Change], Change]:
    """Register the decorated function as a mutation; its docstring says what it breaks."""

    def register(change: Callable[[Resource], None]) -> Callable[[Resource], None]:
        doc = " ".join((change.__doc__ or "").split())
        assert doc, f"mutation {case_id} needs a docstring"
        MUTATIONS.append(Mutation(case_id, profile_id, kind, base or profile_id, change, doc))
        return change

    return register


# migraine-infusion-request (the example is a bag with a contained Medication)


@breaks("request-without-requester", "migraine-infusion-request", "cardinality")
def _(r: Resource) -> None:
    """requester removed: the profile makes it 1..1."""
    del r["requester"]


@breaks("request-with-three-dosage-instructions", "migraine-infusion-request", "cardinality")
def _(r: Resource) -> None:
    """Three dosageInstructions: the profile allows two (max 2: a first dose, then the repeats)."""
    r["dosageInstruction"] += [copy.deepcopy(r["dosageInstruction"][0]) for _ in range(2)]


@breaks("request-without-timing", "migraine-infusion-request", "cardinality")
def _(r: Resource) -> None:
    """dosageInstruction.timing removed and the rate kept: the profile makes timing 1..1."""
    r["dosageInstruction"][0]["doseAndRate"][0].setdefault("rateQuantity", {"value": 400, "unit": "mL/h", "system": UCUM, "code": "mL/h"})
    del r["dosageInstruction"][0]["timing"]


@breaks("request-without-intent", "migraine-infusion-request", "cardinality")
def _(r: Resource) -> None:
    """intent removed: MedicationRequest.intent is 1..1 in the base resource."""
    del r["intent"]


@breaks("request-intent-not-a-request-intent", "migraine-infusion-request", "binding")
def _(r: Resource) -> None:
    """intent 'draft' (a status, not an intent): not in the base spec's required medicationrequest-intent."""
    r["intent"] = "draft"


@breaks("request-group-identifier-of-another-system", "migraine-infusion-request", "fixed")
def _(r: Resource) -> None:
    """groupIdentifier.system is another URI: the profile fixes it to the order identifier system."""
    r["groupIdentifier"]["system"] = "urn:example:orders"


@breaks("request-route-oral", "migraine-infusion-request", "binding")
def _(r: Resource) -> None:
    """route oral (SNOMED 26643006): not in the required ValueSet migraine-infusion-route."""
    r["dosageInstruction"][0]["route"] = _concept(SNOMED, "26643006")


@breaks("request-method-not-in-value-set", "migraine-infusion-request", "binding")
def _(r: Resource) -> None:
    """method SNOMED 129326001 (injection): not in the required ValueSet migraine-administration-method."""
    r["dosageInstruction"][0]["method"] = _concept(SNOMED, "129326001")


@breaks("request-status-not-a-request-status", "migraine-infusion-request", "binding")
def _(r: Resource) -> None:
    """status 'ongoing': not a code of the base spec's required medicationrequest-status."""
    r["status"] = "ongoing"


@breaks("request-ordered-dose-without-type", "migraine-infusion-request", "slicing")
def _(r: Resource) -> None:
    """The ordered doseAndRate loses its type: the required slice 'ordered' is not found."""
    del r["dosageInstruction"][0]["doseAndRate"][0]["type"]


@breaks("request-with-two-ordered-doses", "migraine-infusion-request", "slicing")
def _(r: Resource) -> None:
    """A second doseAndRate of type 'ordered': the slice 'ordered' allows one."""
    rates = r["dosageInstruction"][0]["doseAndRate"]
    rates.append(copy.deepcopy(rates[0]))


@breaks("request-with-calculated-doses-only", "migraine-infusion-request", "slicing")
def _(r: Resource) -> None:
    """Every doseAndRate typed 'calculated': the required slice 'ordered' is not found."""
    for rate in r["dosageInstruction"][0]["doseAndRate"]:
        rate["type"] = {"coding": [{"system": DOSE_RATE_TYPE, "code": "calculated"}]}


@breaks("request-bag-without-rate-or-duration", "migraine-infusion-request", "invariant", base="bag-request")
def _(r: Resource) -> None:
    """mig-mr-1: a bag with neither a rate nor timing.repeat.duration."""
    for rate in r["dosageInstruction"][0]["doseAndRate"]:
        for key in [k for k in rate if k.startswith("rate")]:
            del rate[key]
    repeat = r["dosageInstruction"][0]["timing"]["repeat"]
    repeat.pop("duration", None)
    repeat.pop("durationUnit", None)


@breaks("push-request-without-dose", "migraine-infusion-request", "invariant", base="push-request")
def _(r: Resource) -> None:
    """mig-mr-2: a push whose doseAndRate has no dose."""
    del r["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]


@breaks("push-request-drug-without-rxnorm-or-text", "migraine-infusion-request", "invariant", base="push-request")
def _(r: Resource) -> None:
    """mig-mr-3: the drug coded in SNOMED only, with no text."""
    r["medicationCodeableConcept"] = _concept(SNOMED, "372776000")


@breaks("request-reason-coded-in-icd-10", "migraine-infusion-request", "invariant")
def _(r: Resource) -> None:
    """mig-mr-4: the reason coded in WHO ICD-10, neither ICD-10-CM nor SNOMED CT."""
    r["reasonCode"] = [_concept("http://hl7.org/fhir/sid/icd-10", "G43.9")]


@breaks("request-period-limit-over-a-volume", "migraine-infusion-request", "invariant", base="limited-request")
def _(r: Resource) -> None:
    """mig-mr-5: maxDosePerPeriod over 24 mL, not over a time."""
    r["dosageInstruction"][0]["maxDosePerPeriod"]["denominator"] = {"value": 24, "unit": "mL", "system": UCUM,
                                                                     "code": "mL"}


@breaks("request-period-limit-without-ucum", "migraine-infusion-request", "invariant", base="limited-request")
def _(r: Resource) -> None:
    """mig-mr-5: the numerator of maxDosePerPeriod has a unit text but no UCUM system and code."""
    r["dosageInstruction"][0]["maxDosePerPeriod"]["numerator"] = {"value": 3, "unit": "milligrams"}


@breaks("request-detected-issue-is-an-observation", "migraine-infusion-request", "reference", base="limited-request")
def _(r: Resource) -> None:
    """detectedIssue points to an Observation: the profile allows a DetectedIssue only."""
    r["detectedIssue"] = [{"reference": "Observation/1"}]


# migraine-detected-issue (the example: an order step approved off-label)


@breaks("detected-issue-without-detail", "migraine-detected-issue", "cardinality")
def _(r: Resource) -> None:
    """detail removed: the profile makes it 1..1 (it names the order's value and the label's)."""
    del r["detail"]


@breaks("detected-issue-without-implicated", "migraine-detected-issue", "cardinality")
def _(r: Resource) -> None:
    """implicated removed: the profile requires the step's MedicationRequest."""
    del r["implicated"]


@breaks("detected-issue-preliminary", "migraine-detected-issue", "fixed")
def _(r: Resource) -> None:
    """status 'preliminary' (an observation-status code): the profile fixes it to 'final'."""
    r["status"] = "preliminary"


@breaks("detected-issue-severity-severe", "migraine-detected-issue", "binding")
def _(r: Resource) -> None:
    """severity 'severe': not a code of the base spec's required detectedissue-severity."""
    r["severity"] = "severe"


@breaks("detected-issue-code-in-snomed", "migraine-detected-issue", "invariant")
def _(r: Resource) -> None:
    """mig-di-1: the issue coded in SNOMED CT only, not in HL7 v3 ActCode."""
    r["code"] = _concept(SNOMED, "281647001")


@breaks("detected-issue-implicates-a-patient", "migraine-detected-issue", "reference")
def _(r: Resource) -> None:
    """implicated points to a Patient: the profile allows the step's MedicationRequest only."""
    r["implicated"] = [{"reference": "Patient/1"}]


@breaks("detected-issue-identified-as-a-period", "migraine-detected-issue", "type")
def _(r: Resource) -> None:
    """identifiedPeriod instead of identifiedDateTime: the profile keeps the dateTime type only."""
    r["identifiedPeriod"] = {"start": r.pop("identifiedDateTime")}


@breaks("request-authored-on-not-a-date-time", "migraine-infusion-request", "type")
def _(r: Resource) -> None:
    """authoredOn '03/12/2026 13:40': not a FHIR dateTime."""
    r["authoredOn"] = "03/12/2026 13:40"


@breaks("request-dosage-sequence-as-string", "migraine-infusion-request", "type")
def _(r: Resource) -> None:
    """dosageInstruction.sequence as the string "2" where an integer is due."""
    r["dosageInstruction"][0]["sequence"] = str(r["dosageInstruction"][0]["sequence"])


@breaks("request-dosage-with-unknown-element", "migraine-infusion-request", "unknown")
def _(r: Resource) -> None:
    """dosageInstruction.speed: Dosage has no such element."""
    r["dosageInstruction"][0]["speed"] = "fast"


@breaks("request-bag-reference-to-nothing-contained", "migraine-infusion-request", "reference", base="bag-request")
def _(r: Resource) -> None:
    """medicationReference '#bag-missing': no contained resource has that id."""
    r["medicationReference"] = {"reference": "#bag-missing"}


@breaks("request-subject-is-a-practitioner", "migraine-infusion-request", "reference")
def _(r: Resource) -> None:
    """subject Practitioner/9: the profile allows Reference(Patient) only."""
    r["subject"] = {"reference": "Practitioner/9"}


@breaks("request-two-contained-with-one-id", "migraine-infusion-request", "structure")
def _(r: Resource) -> None:
    """A second contained resource with the id of the first: ids must be unique in a resource."""
    r["contained"].append(copy.deepcopy(r["contained"][0]))


# migraine-bag-medication


@breaks("bag-without-amount", "migraine-bag-medication", "cardinality")
def _(r: Resource) -> None:
    """amount removed: the profile makes it 1..1."""
    del r["amount"]


@breaks("bag-without-ingredients", "migraine-bag-medication", "cardinality")
def _(r: Resource) -> None:
    """ingredient removed: the profile makes it 1..*."""
    del r["ingredient"]


@breaks("bag-ingredient-without-item", "migraine-bag-medication", "cardinality")
def _(r: Resource) -> None:
    """The first ingredient loses itemCodeableConcept: item[x] is 1..1 in the base resource."""
    del r["ingredient"][0]["itemCodeableConcept"]


@breaks("bag-ingredient-as-substance-reference", "migraine-bag-medication", "type")
def _(r: Resource) -> None:
    """ingredient.itemReference: the profile allows item[x] as a CodeableConcept only."""
    _retype(r["ingredient"][0], "itemCodeableConcept", "itemReference", {"display": "sodium chloride"})


@breaks("bag-ordered-dose-as-string", "migraine-bag-medication", "type")
def _(r: Resource) -> None:
    """The ordered-dose extension holds valueString: its value[x] is a Quantity."""
    r["ingredient"][1]["extension"] = [{"url": ORDERED_DOSE_EXT, "valueString": "15 mg/kg"}]


@breaks("bag-ingredient-active-as-string", "migraine-bag-medication", "type")
def _(r: Resource) -> None:
    """ingredient.isActive "yes" where a boolean is due."""
    r["ingredient"][0]["isActive"] = "yes"


@breaks("bag-volume-unit-code-without-system", "migraine-bag-medication", "invariant")
def _(r: Resource) -> None:
    """amount.numerator keeps its unit code 'mL' but loses the system: the base spec's qty-3."""
    del r["amount"]["numerator"]["system"]


@breaks("bag-amount-without-denominator", "migraine-bag-medication", "invariant")
def _(r: Resource) -> None:
    """amount has a numerator and no denominator: the base spec's rat-1."""
    del r["amount"]["denominator"]


@breaks("bag-volume-as-string", "migraine-bag-medication", "type")
def _(r: Resource) -> None:
    """amount.numerator.value "100" (a string) where a decimal is due."""
    r["amount"]["numerator"]["value"] = "100"


@breaks("bag-with-two-ordered-doses", "migraine-bag-medication", "slicing")
def _(r: Resource) -> None:
    """A second ordered-dose extension on the same ingredient: the slice orderedDose is 0..1."""
    per_kg = {"value": 15, "unit": "mg/kg", "system": "http://unitsofmeasure.org", "code": "mg/kg"}
    r["ingredient"][1]["extension"] = [{"url": ORDERED_DOSE_EXT, "valueQuantity": per_kg}] * 2


@breaks("bag-with-two-dose-ceilings", "migraine-bag-medication", "slicing")
def _(r: Resource) -> None:
    """Two dose-ceiling extensions on one additive: the slice doseCeiling is 0..1."""
    ceiling = {"value": 4, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"}
    r["ingredient"][1]["extension"] = [{"url": DOSE_CEILING_EXT, "valueQuantity": ceiling}] * 2


@breaks("bag-dose-ceiling-as-string", "migraine-bag-medication", "type")
def _(r: Resource) -> None:
    """The dose-ceiling extension holds valueString: its value[x] is a Quantity."""
    r["ingredient"][1]["extension"] = [{"url": DOSE_CEILING_EXT, "valueString": "4 g"}]


@breaks("bag-ingredient-with-unknown-element", "migraine-bag-medication", "unknown")
def _(r: Resource) -> None:
    """ingredient.concentration: Medication.ingredient has no such element."""
    r["ingredient"][0]["concentration"] = "0.9%"


# migraine-infusion-group


@breaks("group-without-actions", "migraine-infusion-group", "cardinality")
def _(r: Resource) -> None:
    """action removed: the profile makes it 1..*."""
    del r["action"]


@breaks("group-action-without-prefix", "migraine-infusion-group", "cardinality")
def _(r: Resource) -> None:
    """action.prefix removed: the profile makes it 1..1."""
    del r["action"][0]["prefix"]


@breaks("group-without-author", "migraine-infusion-group", "cardinality")
def _(r: Resource) -> None:
    """author removed: the profile makes it 1..1."""
    del r["author"]


@breaks("group-without-status", "migraine-infusion-group", "cardinality")
def _(r: Resource) -> None:
    """status removed: RequestGroup.status is 1..1 in the base resource."""
    del r["status"]


@breaks("group-intent-not-a-request-intent", "migraine-infusion-group", "binding")
def _(r: Resource) -> None:
    """intent 'active' (a status, not an intent): not in the base spec's required request-intent."""
    r["intent"] = "active"


@breaks("group-status-not-a-request-status", "migraine-infusion-group", "binding")
def _(r: Resource) -> None:
    """status 'in-progress': not a code of the base spec's required request-status."""
    r["status"] = "in-progress"


@breaks("group-order-identifier-of-another-system", "migraine-infusion-group", "slicing")
def _(r: Resource) -> None:
    """The order identifier gets another system: the required slice 'order' is not found."""
    identifiers(r)[0]["system"] = "urn:example:orders"


@breaks("group-with-two-order-identifiers", "migraine-infusion-group", "slicing")
def _(r: Resource) -> None:
    """A second identifier in the order system: the slice 'order' allows one."""
    r["identifier"].append({"system": ORDER_ID, "value": "pni-2026-0099"})


@breaks("group-with-two-session-durations", "migraine-infusion-group", "slicing")
def _(r: Resource) -> None:
    """A second minimum-session-duration extension: the slice is 0..1."""
    r["extension"].append(copy.deepcopy(r["extension"][0]))


@breaks("group-session-duration-as-string", "migraine-infusion-group", "type")
def _(r: Resource) -> None:
    """minimum-session-duration holds valueString: its value[x] is a Duration."""
    _retype(r["extension"][0], "valueDuration", "valueString", "35 min")


@breaks("group-authored-on-without-time-zone", "migraine-infusion-group", "type")
def _(r: Resource) -> None:
    """authoredOn with hours but no time zone: a FHIR dateTime with a time needs one."""
    r["authoredOn"] = "2026-11-30T16:20:00"


@breaks("group-action-with-unknown-element", "migraine-infusion-group", "unknown")
def _(r: Resource) -> None:
    """action.order: RequestGroup.action has no such element."""
    r["action"][0]["order"] = 1


@breaks("group-action-resource-is-a-patient", "migraine-infusion-group", "reference")
def _(r: Resource) -> None:
    """action.resource Patient/123: the profile allows Reference(MedicationRequest) only."""
    r["action"][0]["resource"] = {"reference": "Patient/123"}


@breaks("bundle-group-action-not-an-entry", "migraine-infusion-group", "reference", base="order-bundle")
def _(r: Resource) -> None:
    """The MedicationRequest entry removed: the group's action.resource urn:uuid names no entry."""
    r["entry"].remove(_entry(r, "MedicationRequest"))


# migraine-infusion-protocol


@breaks("protocol-without-version", "migraine-infusion-protocol", "cardinality")
def _(r: Resource) -> None:
    """version removed: the profile makes it 1..1."""
    del r["version"]


@breaks("protocol-action-without-definition", "migraine-infusion-protocol", "cardinality")
def _(r: Resource) -> None:
    """action.definitionCanonical removed: the profile makes definition[x] 1..1."""
    del r["action"][0]["definitionCanonical"]


@breaks("protocol-without-status", "migraine-infusion-protocol", "cardinality")
def _(r: Resource) -> None:
    """status removed: PlanDefinition.status is 1..1 in the base resource."""
    del r["status"]


@breaks("protocol-type-eca-rule", "migraine-infusion-protocol", "pattern")
def _(r: Resource) -> None:
    """type plan-definition-type 'eca-rule': the profile's pattern is 'order-set'."""
    r["type"] = _concept("http://terminology.hl7.org/CodeSystem/plan-definition-type", "eca-rule")


@breaks("protocol-intent-chronic", "migraine-infusion-protocol", "binding")
def _(r: Resource) -> None:
    """The intent useContext says 'chronic': not in the required ValueSet migraine-protocol-intent."""
    r["useContext"][0]["valueCodeableConcept"] = _concept(SNOMED, "431237007")


@breaks("protocol-status-published", "migraine-infusion-protocol", "binding")
def _(r: Resource) -> None:
    """status 'published': not a code of the base spec's required publication-status."""
    r["status"] = "published"


@breaks("protocol-use-context-not-a-focus", "migraine-infusion-protocol", "slicing")
def _(r: Resource) -> None:
    """The only useContext has code 'venue': the required slice 'intent' (code 'focus') is not found."""
    r["useContext"][0]["code"] = {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "venue"}


@breaks("protocol-with-two-intents", "migraine-infusion-protocol", "slicing")
def _(r: Resource) -> None:
    """A second 'focus' useContext: the slice 'intent' allows one."""
    r["useContext"].append(copy.deepcopy(r["useContext"][0]))


@breaks("protocol-status-migrainosus-without-status-migrainosus", "migraine-infusion-protocol", "invariant")
def _(r: Resource) -> None:
    """mig-pd-1: intent 'status-migrainosus' while the reason (G43.709) is without status migrainosus."""
    r["useContext"][0]["valueCodeableConcept"]["coding"][0]["code"] = "status-migrainosus"


@breaks("protocol-action-definition-as-uri", "migraine-infusion-protocol", "type")
def _(r: Resource) -> None:
    """action.definitionUri: the profile allows definition[x] as a canonical only."""
    action = r["action"][0]
    _retype(action, "definitionCanonical", "definitionUri", action["definitionCanonical"])


@breaks("protocol-date-not-a-date-time", "migraine-infusion-protocol", "type")
def _(r: Resource) -> None:
    """date '2026-02-30': not a FHIR dateTime (no such day)."""
    r["date"] = "2026-02-30"


@breaks("protocol-with-unknown-element", "migraine-infusion-protocol", "unknown")
def _(r: Resource) -> None:
    """indication: PlanDefinition has no such element."""
    r["indication"] = "migraine"


# migraine-order-weight


@breaks("weight-without-value", "migraine-order-weight", "cardinality")
def _(r: Resource) -> None:
    """valueQuantity removed: the profile makes value[x] 1..1."""
    del r["valueQuantity"]


@breaks("weight-without-unit-code", "migraine-order-weight", "cardinality")
def _(r: Resource) -> None:
    """valueQuantity.code removed: the profile makes it 1..1."""
    del r["valueQuantity"]["code"]


@breaks("weight-without-code", "migraine-order-weight", "cardinality")
def _(r: Resource) -> None:
    """code removed: Observation.code is 1..1 in the base resource."""
    del r["code"]


@breaks("weight-unit-system-not-ucum", "migraine-order-weight", "fixed")
def _(r: Resource) -> None:
    """valueQuantity.system is another URI: the profile fixes it to UCUM."""
    r["valueQuantity"]["system"] = "urn:example:units"


@breaks("weight-code-is-body-height", "migraine-order-weight", "pattern")
def _(r: Resource) -> None:
    """code LOINC 8302-2 (body height): the profile's pattern is LOINC 29463-7."""
    r["code"] = _concept(LOINC, "8302-2")


@breaks("weight-in-milligrams", "migraine-order-weight", "binding")
def _(r: Resource) -> None:
    """Weight in mg: not in the required ValueSet migraine-body-weight-units."""
    r["valueQuantity"].update(value=62000000, unit="mg", code="mg")


@breaks("weight-status-not-an-observation-status", "migraine-order-weight", "binding")
def _(r: Resource) -> None:
    """status 'done': not a code of the base spec's required observation-status."""
    r["status"] = "done"


@breaks("weight-category-exam", "migraine-order-weight", "slicing")
def _(r: Resource) -> None:
    """category 'exam': the closed slicing of category allows the slice 'vitalSigns' only."""
    r["category"] = [_concept(CATEGORY, "exam")]


@breaks("weight-with-two-vital-signs-categories", "migraine-order-weight", "slicing")
def _(r: Resource) -> None:
    """category 'vital-signs' twice: the slice 'vitalSigns' allows one."""
    r["category"] = [_concept(CATEGORY, "vital-signs"), _concept(CATEGORY, "vital-signs")]


@breaks("weight-effective-as-period", "migraine-order-weight", "type")
def _(r: Resource) -> None:
    """effectivePeriod: the profile allows effective[x] as a dateTime only."""
    _retype(r, "effectiveDateTime", "effectivePeriod", {"start": r["effectiveDateTime"]})


@breaks("weight-value-as-string", "migraine-order-weight", "type")
def _(r: Resource) -> None:
    """valueQuantity.value "62" (a string) where a decimal is due."""
    r["valueQuantity"]["value"] = "62"


@breaks("weight-with-unknown-element", "migraine-order-weight", "unknown")
def _(r: Resource) -> None:
    """bmi: Observation has no such element."""
    r["bmi"] = 22.1


# diary-day


@breaks("day-without-headache-answer", "diary-day", "invariant")
def _(r: Resource) -> None:
    """mig-day-1: neither valueBoolean nor dataAbsentReason."""
    del r["valueBoolean"]


@breaks("day-without-performer", "diary-day", "cardinality")
def _(r: Resource) -> None:
    """performer removed: the profile makes it 1..1."""
    del r["performer"]


@breaks("day-with-two-notes", "diary-day", "cardinality")
def _(r: Resource) -> None:
    """A second note: the profile allows one."""
    r["note"].append({"text": "A second note."})


@breaks("day-without-status", "diary-day", "cardinality")
def _(r: Resource) -> None:
    """status removed: Observation.status is 1..1 in the base resource."""
    del r["status"]


@breaks("day-code-is-attack", "diary-day", "pattern")
def _(r: Resource) -> None:
    """code SNOMED 25064002 (the attack's): the profile's pattern is migraine-diary 'diary-day'."""
    r["code"] = _concept(SNOMED, "25064002")


@breaks("day-code-with-an-unknown-diary-code", "diary-day", "code")
def _(r: Resource) -> None:
    """A second coding of Observation.code, 'no-such-code' of the project's CodeSystem migraine-diary
    (content complete): not a code of that system. The pattern coding stays."""
    r["code"]["coding"].append({"system": DIARY_CODES, "code": "no-such-code"})


@breaks("day-status-not-an-observation-status", "diary-day", "binding")
def _(r: Resource) -> None:
    """status 'complete': not a code of the base spec's required observation-status."""
    r["status"] = "complete"


@breaks("day-diary-identifier-of-another-system", "diary-day", "slicing")
def _(r: Resource) -> None:
    """The diary identifier gets another system: the required slice 'diary' is not found."""
    identifiers(r)[0]["system"] = "urn:example:diary"


@breaks("day-with-two-diary-identifiers", "diary-day", "slicing")
def _(r: Resource) -> None:
    """A second identifier in the diary system: the slice 'diary' allows one."""
    r["identifier"].append({"system": DIARY_ID, "value": "p123-duplicate"})


@breaks("day-category-exam", "diary-day", "slicing")
def _(r: Resource) -> None:
    """category 'exam' only: the required slice 'survey' is not found."""
    r["category"] = [_concept(CATEGORY, "exam")]


@breaks("day-value-as-string", "diary-day", "type")
def _(r: Resource) -> None:
    """valueString: the profile allows value[x] as a boolean only."""
    _retype(r, "valueBoolean", "valueString", "yes")


@breaks("day-date-not-a-date", "diary-day", "type")
def _(r: Resource) -> None:
    """effectiveDateTime '2026-10-32': not a FHIR dateTime."""
    r["effectiveDateTime"] = "2026-10-32"


@breaks("day-with-unknown-element", "diary-day", "unknown")
def _(r: Resource) -> None:
    """mood: Observation has no such element."""
    r["mood"] = "fine"


@breaks("day-performer-to-nothing-contained", "diary-day", "reference")
def _(r: Resource) -> None:
    """performer '#patient': no contained resource has that id."""
    r["performer"] = [{"reference": "#patient"}]


@breaks("day-answer-and-absent-reason", "diary-day", "invariant")
def _(r: Resource) -> None:
    """A dataAbsentReason beside the yes/no value: the base spec's obs-6 allows one or the other."""
    r["dataAbsentReason"] = _concept("http://terminology.hl7.org/CodeSystem/data-absent-reason", "unknown")


@breaks("day-performer-empty", "diary-day", "invariant")
def _(r: Resource) -> None:
    """performer [{}], a Reference with nothing in it: the base spec's ele-1 wants a value or children."""
    r["performer"] = [{}]


@breaks("bundle-day-member-not-an-entry", "diary-day", "reference", base="diary-day-bundle")
def _(r: Resource) -> None:
    """The entry of the day's last member removed: its hasMember urn:uuid names no entry."""
    last = r["entry"][0]["resource"]["hasMember"][-1]["reference"]
    r["entry"] = [e for e in r["entry"] if e["fullUrl"] != last]


# diary-attack


@breaks("attack-peak-intensity-eleven", "diary-attack", "invariant")
def _(r: Resource) -> None:
    """mig-att-2: peak intensity 11, above 10."""
    _component(r, "72514-3")["valueInteger"] = 11


@breaks("attack-peak-intensity-negative", "diary-attack", "invariant")
def _(r: Resource) -> None:
    """mig-att-2: peak intensity -1, below 0."""
    _component(r, "72514-3")["valueInteger"] = -1


@breaks("attack-ends-before-it-starts", "diary-attack", "invariant")
def _(r: Resource) -> None:
    """mig-att-1: the period ends an hour before it starts."""
    r["effectivePeriod"]["end"] = "2026-10-20T05:30:00-04:00"


@breaks("attack-starts-the-day-after-it-ends", "diary-attack", "invariant")
def _(r: Resource) -> None:
    """mig-att-1: start is the date 2026-10-21, end a time on 2026-10-20; compared on the day they
    share, the attack ends first."""
    r["effectivePeriod"]["start"] = "2026-10-21"


@breaks("attack-start-a-date-on-the-day-it-ends", "diary-attack", "invariant")
def _(r: Resource) -> None:
    """mig-att-1: start is the date 2026-10-20, end a time that day; the comparison is unknown
    (different precision, same day), and an invariant must evaluate to true."""
    r["effectivePeriod"]["start"] = "2026-10-20"


@breaks("attack-without-start", "diary-attack", "cardinality")
def _(r: Resource) -> None:
    """effectivePeriod.start removed: the profile makes it 1..1."""
    del r["effectivePeriod"]["start"]


@breaks("attack-without-subject", "diary-attack", "cardinality")
def _(r: Resource) -> None:
    """subject removed: the profile makes it 1..1."""
    del r["subject"]


@breaks("attack-peak-intensity-without-value", "diary-attack", "cardinality")
def _(r: Resource) -> None:
    """The peak intensity component loses its value: the slice makes value[x] 1..1."""
    del _component(r, "72514-3")["valueInteger"]


@breaks("attack-code-is-diary-day", "diary-attack", "pattern")
def _(r: Resource) -> None:
    """code migraine-diary 'diary-day': the profile's pattern is SNOMED 25064002 (Headache)."""
    r["code"] = _concept(DIARY_CODES, "diary-day")


@breaks("attack-location-not-in-value-set", "diary-attack", "binding")
def _(r: Resource) -> None:
    """location SNOMED 66019005 (limb): not in the required ValueSet diary-headache-location."""
    _component(r, "headache-location")["valueCodeableConcept"] = _concept(SNOMED, "66019005")


@breaks("attack-symptom-is-a-trigger", "diary-attack", "binding")
def _(r: Resource) -> None:
    """A symptom coded with the attack's trigger code: not in the required ValueSet diary-symptom."""
    trigger = _component(r, "attack-trigger")["valueCodeableConcept"]
    _component(r, "associated-symptom")["valueCodeableConcept"] = copy.deepcopy(trigger)


@breaks("attack-with-unknown-component", "diary-attack", "slicing")
def _(r: Resource) -> None:
    """A heart rate component: it matches no slice and the component slicing is closed."""
    r["component"].append({"code": _concept(LOINC, "8867-4"), "valueQuantity": {"value": 88, "system": UCUM, "code": "/min"}})


@breaks("attack-with-two-peak-intensities", "diary-attack", "slicing")
def _(r: Resource) -> None:
    """A second peak intensity component: the slice 'peakIntensity' allows one."""
    _duplicate_component(r, "72514-3")


@breaks("attack-with-two-locations", "diary-attack", "slicing")
def _(r: Resource) -> None:
    """A second location component: the slice 'location' allows one."""
    _duplicate_component(r, "headache-location")


@breaks("attack-effective-as-date-time", "diary-attack", "type")
def _(r: Resource) -> None:
    """effectiveDateTime: the profile allows effective[x] as a Period only."""
    _retype(r, "effectivePeriod", "effectiveDateTime", r["effectivePeriod"]["start"])


@breaks("attack-peak-intensity-as-string-value", "diary-attack", "type")
def _(r: Resource) -> None:
    """The peak intensity as valueString: the slice allows value[x] as an integer only."""
    _retype(_component(r, "72514-3"), "valueInteger", "valueString", "7")


@breaks("attack-peak-intensity-integer-holds-text", "diary-attack", "type")
def _(r: Resource) -> None:
    """valueInteger "7" (a string) where an integer is due."""
    _component(r, "72514-3")["valueInteger"] = "7"


@breaks("attack-with-unknown-element", "diary-attack", "unknown")
def _(r: Resource) -> None:
    """severity: Observation has no such element."""
    r["severity"] = "high"


# diary-medication-statement


@breaks("medication-without-dose", "diary-medication-statement", "cardinality")
def _(r: Resource) -> None:
    """dosage.doseAndRate removed: the profile makes it 1..1."""
    del r["dosage"][0]["doseAndRate"]


@breaks("medication-without-information-source", "diary-medication-statement", "cardinality")
def _(r: Resource) -> None:
    """informationSource (the patient) removed: the profile makes it 1..1."""
    del r["informationSource"]


@breaks("medication-without-drug-text", "diary-medication-statement", "cardinality")
def _(r: Resource) -> None:
    """medicationCodeableConcept.text (the drug as written) removed: the profile makes it 1..1."""
    del r["medicationCodeableConcept"]["text"]


@breaks("medication-with-two-dosages", "diary-medication-statement", "cardinality")
def _(r: Resource) -> None:
    """A second dosage: the profile allows one."""
    r["dosage"].append(copy.deepcopy(r["dosage"][0]))


@breaks("medication-identifier-of-another-system", "diary-medication-statement", "slicing")
def _(r: Resource) -> None:
    """The identifier's system is the order system: the required slice 'diary' is not found."""
    r["identifier"][0]["system"] = ORDER_ID


@breaks("medication-route-not-in-value-set", "diary-medication-statement", "binding")
def _(r: Resource) -> None:
    """route SNOMED 447694001 (respiratory tract): not in the required ValueSet diary-medication-route."""
    r["dosage"][0]["route"] = _concept(SNOMED, "447694001")


@breaks("medication-dose-as-range", "diary-medication-statement", "type")
def _(r: Resource) -> None:
    """The dose as doseRange: the profile allows dose[x] as a Quantity only."""
    dose = r["dosage"][0]["doseAndRate"][0]
    _retype(dose, "doseQuantity", "doseRange", {"low": dose["doseQuantity"], "high": dose["doseQuantity"]})


@breaks("medication-with-unknown-element", "diary-medication-statement", "unknown")
def _(r: Resource) -> None:
    """dosage.brand: Dosage has no such element."""
    r["dosage"][0]["brand"] = "Zomig"


# diary-medication-outcome


@breaks("outcome-without-part-of", "diary-medication-outcome", "cardinality")
def _(r: Resource) -> None:
    """partOf (the MedicationStatement) removed: the profile makes it 1..1."""
    del r["partOf"]


@breaks("outcome-with-a-value", "diary-medication-outcome", "cardinality")
def _(r: Resource) -> None:
    """valueBoolean: the outcomes are components, the profile makes value[x] 0..0."""
    r["valueBoolean"] = True


@breaks("outcome-code-is-medication-taken", "diary-medication-outcome", "pattern")
def _(r: Resource) -> None:
    """code migraine-diary 'medication-taken': the profile's pattern is 'medication-outcome-2h'."""
    r["code"] = _concept(DIARY_CODES, "medication-taken")


@breaks("outcome-with-unknown-component", "diary-medication-outcome", "slicing")
def _(r: Resource) -> None:
    """A component coded 'hydration-product': no slice of this profile, and the slicing is closed."""
    r["component"].append({"code": _concept(DIARY_CODES, "hydration-product"), "valueString": "water"})


@breaks("outcome-with-two-reliefs", "diary-medication-outcome", "slicing")
def _(r: Resource) -> None:
    """A second relief component: the slice 'relief2h' allows one."""
    _duplicate_component(r, "relief-2h")


@breaks("outcome-pain-not-in-value-set", "diary-medication-outcome", "binding")
def _(r: Resource) -> None:
    """pain-2h SNOMED 24484000 (Severe): not in the required ValueSet diary-pain-4-point (LOINC answers)."""
    _component(r, "pain-2h")["valueCodeableConcept"] = _concept(SNOMED, "24484000")


@breaks("outcome-relief-as-text", "diary-medication-outcome", "type")
def _(r: Resource) -> None:
    """relief-2h valueBoolean "true" (a string) where a boolean is due."""
    _component(r, "relief-2h")["valueBoolean"] = "true"


@breaks("outcome-pain-free-as-string-value", "diary-medication-outcome", "type")
def _(r: Resource) -> None:
    """pain-free-2h as valueString: the slice allows value[x] as a boolean only."""
    _retype(_component(r, "pain-free-2h"), "valueBoolean", "valueString", "yes")


# diary-oral-intake


@breaks("drink-in-milligrams", "diary-oral-intake", "binding")
def _(r: Resource) -> None:
    """Volume in mg: not in the required ValueSet diary-volume-units."""
    r["valueQuantity"].update(unit="mg", code="mg")


@breaks("drink-unit-system-not-ucum", "diary-oral-intake", "fixed")
def _(r: Resource) -> None:
    """valueQuantity.system is another URI: the profile fixes it to UCUM."""
    r["valueQuantity"]["system"] = "urn:example:units"


@breaks("drink-without-volume-number", "diary-oral-intake", "cardinality")
def _(r: Resource) -> None:
    """valueQuantity.value removed: the profile makes it 1..1."""
    del r["valueQuantity"]["value"]


@breaks("drink-without-components", "diary-oral-intake", "cardinality")
def _(r: Resource) -> None:
    """component removed (the product with it): the profile makes component 1..*."""
    del r["component"]


@breaks("drink-with-two-products", "diary-oral-intake", "slicing")
def _(r: Resource) -> None:
    """A second product component: the slice 'product' allows one."""
    _duplicate_component(r, "hydration-product")


@breaks("drink-code-is-body-weight", "diary-oral-intake", "pattern")
def _(r: Resource) -> None:
    """code LOINC 29463-7: the profile's pattern is LOINC 8999-5."""
    r["code"] = _concept(LOINC, "29463-7")


@breaks("drink-product-as-integer", "diary-oral-intake", "type")
def _(r: Resource) -> None:
    """The product as valueInteger: the slice allows value[x] as a string only."""
    _retype(_component(r, "hydration-product"), "valueString", "valueInteger", 1)


@breaks("drink-volume-as-string", "diary-oral-intake", "type")
def _(r: Resource) -> None:
    """valueQuantity.value "500" (a string) where a decimal is due."""
    r["valueQuantity"]["value"] = "500"


@breaks("drink-with-unknown-element", "diary-oral-intake", "unknown")
def _(r: Resource) -> None:
    """valueQuantity.brand: Quantity has no such element."""
    r["valueQuantity"]["brand"] = "tap"


# diary-infusion-received


@breaks("infusion-without-value", "diary-infusion-received", "cardinality")
def _(r: Resource) -> None:
    """valueBoolean removed: the profile makes value[x] 1..1."""
    del r["valueBoolean"]


@breaks("infusion-without-performer", "diary-infusion-received", "cardinality")
def _(r: Resource) -> None:
    """performer removed: the profile makes it 1..1."""
    del r["performer"]


@breaks("infusion-code-is-medication-taken", "diary-infusion-received", "pattern")
def _(r: Resource) -> None:
    """code migraine-diary 'medication-taken': the profile's pattern is 'infusion-received'."""
    r["code"] = _concept(DIARY_CODES, "medication-taken")


@breaks("infusion-with-unknown-component", "diary-infusion-received", "slicing")
def _(r: Resource) -> None:
    """A component coded 'relief-2h': no slice of this profile, and the slicing is closed."""
    r["component"].append({"code": _concept(DIARY_CODES, "relief-2h"), "valueBoolean": True})


@breaks("infusion-with-two-protocols", "diary-infusion-received", "slicing")
def _(r: Resource) -> None:
    """A second protocol component: the slice 'protocol' allows one."""
    _duplicate_component(r, "infusion-protocol")


@breaks("infusion-value-as-text", "diary-infusion-received", "type")
def _(r: Resource) -> None:
    """valueBoolean "yes" where a boolean is due."""
    r["valueBoolean"] = "yes"


@breaks("infusion-protocol-as-boolean", "diary-infusion-received", "type")
def _(r: Resource) -> None:
    """The protocol as valueBoolean: the slice allows value[x] as a string only."""
    _retype(_component(r, "infusion-protocol"), "valueString", "valueBoolean", True)


@breaks("infusion-time-without-time-zone", "diary-infusion-received", "type")
def _(r: Resource) -> None:
    """effectiveDateTime '2026-11-04T10:00': no seconds and no time zone, not a FHIR dateTime."""
    r["effectiveDateTime"] = "2026-11-04T10:00"


@breaks("infusion-with-unknown-element", "diary-infusion-received", "unknown")
def _(r: Resource) -> None:
    """site: Observation has no such element (bodySite has)."""
    r["site"] = "left arm"


# diary-menstruation


@breaks("menstruation-without-value", "diary-menstruation", "cardinality")
def _(r: Resource) -> None:
    """valueBoolean removed: the profile makes value[x] 1..1."""
    del r["valueBoolean"]


@breaks("menstruation-code-is-diary-day", "diary-menstruation", "pattern")
def _(r: Resource) -> None:
    """code migraine-diary 'diary-day': the profile's pattern is 'menstruating'."""
    r["code"] = _concept(DIARY_CODES, "diary-day")


@breaks("menstruation-value-as-text", "diary-menstruation", "type")
def _(r: Resource) -> None:
    """valueBoolean "yes" where a boolean is due."""
    r["valueBoolean"] = "yes"


@breaks("menstruation-value-as-flow", "diary-menstruation", "type")
def _(r: Resource) -> None:
    """A flow level as valueString: the profile allows value[x] as a boolean only."""
    _retype(r, "valueBoolean", "valueString", "heavy")


# diary-questionnaire-response


@breaks("answers-without-questionnaire", "diary-questionnaire-response", "cardinality")
def _(r: Resource) -> None:
    """questionnaire removed: the profile makes it 1..1."""
    del r["questionnaire"]


@breaks("answers-in-progress", "diary-questionnaire-response", "fixed")
def _(r: Resource) -> None:
    """status 'in-progress': the profile fixes it to 'completed'."""
    r["status"] = "in-progress"


@breaks("answers-to-another-questionnaire", "diary-questionnaire-response", "invariant")
def _(r: Resource) -> None:
    """questionnaire PHQ-9: mig-qr-1 allows only MIDAS and HIT-6."""
    r["questionnaire"] = "http://example.org/Questionnaire/phq-9"


@breaks("answers-without-source", "diary-questionnaire-response", "cardinality")
def _(r: Resource) -> None:
    """source removed: the profile makes it 1..1 (patient-reported)."""
    del r["source"]


# diary-midas-score and diary-hit6-score


@breaks("midas-score-without-answers", "diary-midas-score", "cardinality")
def _(r: Resource) -> None:
    """derivedFrom removed: the profile makes it 1..1 (the QuestionnaireResponse scored)."""
    del r["derivedFrom"]


@breaks("midas-score-as-text", "diary-midas-score", "type")
def _(r: Resource) -> None:
    """The total as valueString: the profile allows value[x] as an integer only."""
    r["valueString"] = str(r.pop("valueInteger"))


@breaks("hit6-score-without-impact", "diary-hit6-score", "cardinality")
def _(r: Resource) -> None:
    """The impact component removed: the slice 'hit6Impact' is 1..1."""
    del r["component"]


@breaks("hit6-score-code-is-midas", "diary-hit6-score", "pattern")
def _(r: Resource) -> None:
    """code migraine-diary 'midas-score': the profile's pattern is 'hit6-score'."""
    r["code"] = _concept(DIARY_CODES, "midas-score")


# -- the corpus ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _cases() -> tuple[Case, ...]:
    found = [Case(case_id, _declared_profile(resource), None, resource, True, "")
             for case_id, resource in _valid_resources()]
    found.append(Case("bundle-diary-day-with-its-members", "diary-day", None, _diary_day_bundle(), True,
                      "a transaction of one diary day and the Observations its hasMember names"))
    found.append(Case("bundle-order-with-its-group", "migraine-infusion-group", None, _order_bundle(), True,
                      "the preventive-nutrient order: a MedicationRequest and the RequestGroup naming it"))
    for mutation in MUTATIONS:
        resource = _base(mutation.base)
        mutation.change(resource)
        found.append(Case(mutation.case_id, mutation.profile_id, mutation.kind, resource, False, mutation.doc))
    ids = [c.id for c in found]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return tuple(found)


def cases() -> list[Case]:
    """Every case, valid first; each call returns fresh copies, so a test may not spoil another."""
    return [copy.deepcopy(case) for case in _cases()]
