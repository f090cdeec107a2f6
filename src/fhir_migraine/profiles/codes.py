"""The package's ValueSets and CodeSystems, built from the code tables in ``terminology/data``.

Every ValueSet lists its codes in ``compose`` and carries the same codes as a precomputed
``expansion``, so a validator needs no terminology server. Spec: https://hl7.org/fhir/R4/valueset.html
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.mapping.dosage import ROUTE_ABBREVIATION
from fhir_migraine.mapping.plandefinition import INTENT_DISPLAY
from fhir_migraine.profiles.elements import CANONICAL, vs_url
from fhir_migraine.terminology import Code

Resource = dict[str, Any]

VERSION = "0.1.0"
# The date of this package version: fixed, so that a rebuild gives the same bytes.
RELEASE_DATE = "2026-01-15"
PUBLISHER = "fhir-migraine"


def table(name: str) -> Any:
    """A code table as it is now (the tables are still being revised, so never copied here)."""
    text = resources.files("fhir_migraine.terminology").joinpath("data", name).read_text(encoding="utf-8")
    return json.loads(text)


def common(resource_type: str, resource_id: str, title: str, description: str) -> Resource:
    """The metadata every conformance resource of the package shares."""
    name = "".join(part.capitalize() for part in resource_id.split("-"))
    return {
        "resourceType": resource_type,
        "id": resource_id,
        "url": f"{CANONICAL}/{resource_type}/{resource_id}",
        "version": VERSION,
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "date": RELEASE_DATE,
        "publisher": PUBLISHER,
        "description": description,
    }


# --- ValueSets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueSetSpec:
    id: str
    title: str
    description: str
    codes: Callable[[], list[Code]]


def _diary(kind: str) -> Callable[[], list[Code]]:
    # A value's earlier codes stay in its value set, so resources written with them still conform.
    return lambda: [code for value in terminology.diary_codes()[kind]
                    for code in (terminology.diary_code(kind, value), *terminology.diary_earlier_codes(kind, value))]


def _routes() -> list[Code]:
    # The routes the order mapping can write (it abbreviates each one in the dosage text).
    return [terminology.route(name) for name in ROUTE_ABBREVIATION]


def _methods() -> list[Code]:
    # A push and an injection share SNOMED CT "Inject": a ValueSet lists each code once.
    return list(dict.fromkeys(terminology.method(name) for name in table("methods.json")))


def _intents() -> list[Code]:
    return [Code(terminology.INFUSION_CS, code, display) for code, display in INTENT_DISPLAY.items()]


def _units(keep: Callable[[str, dict[str, Any]], bool]) -> Callable[[], list[Code]]:
    def codes() -> list[Code]:
        units = terminology.units()["units"]
        return [Code(terminology.UCUM, code, entry["display"]) for code, entry in units.items() if keep(code, entry)]

    return codes


BODY_WEIGHT_UNITS = ("kg", "g", "[lb_av]")

VALUE_SETS = (
    ValueSetSpec("migraine-infusion-route", "Migraine infusion routes",
                 "SNOMED CT routes of an infusion order step: intravenous (bags and pushes), "
                 "subcutaneous and intramuscular (injections).", _routes),
    ValueSetSpec("migraine-administration-method", "Migraine administration methods",
                 "How a step of an infusion protocol is given (SNOMED CT administration methods): Infuse for a "
                 "bag, Inject for an IV push or an injection.", _methods),
    ValueSetSpec("migraine-protocol-intent", "Migraine protocol intents",
                 "What an infusion protocol is for: acute treatment, status migrainosus, prevention.", _intents),
    ValueSetSpec("diary-headache-location", "Headache location",
                 "Where the headache is felt, as the patient records it in the diary.", _diary("location")),
    ValueSetSpec("diary-headache-quality", "Headache quality",
                 "The character of the headache pain, as recorded in the diary.", _diary("quality")),
    ValueSetSpec("diary-symptom", "Headache symptoms",
                 "Symptoms accompanying a headache attack, as recorded in the diary.", _diary("symptoms")),
    ValueSetSpec("diary-aura", "Aura types",
                 "Kinds of aura before or during an attack, as recorded in the diary.", _diary("aura")),
    ValueSetSpec("diary-trigger", "Headache triggers",
                 "What the patient thinks set off an attack.", _diary("triggers")),
    ValueSetSpec("diary-disability", "Headache disability",
                 "How much an attack limited the patient's activity, on a 0 to 3 scale.", _diary("disability")),
    ValueSetSpec("diary-midas-grade", "MIDAS grades",
                 "The four MIDAS grades, I (little or no disability) to IV (severe disability).", _diary("midas_grade")),
    ValueSetSpec("diary-hit6-impact", "HIT-6 impact bands",
                 "The four HIT-6 impact bands, little or no impact to severe impact.", _diary("hit6_impact")),
    ValueSetSpec("diary-medication-route", "Diary medication routes",
                 "How the patient took an acute medication recorded in the diary.", _diary("route")),
    ValueSetSpec("diary-pain-4-point", "Headache pain, 4-point scale",
                 "Headache pain on the 4-point scale of the IHS guidelines for acute-treatment trials: none, "
                 "mild, moderate, severe (LOINC answers).", _diary("pain_2h")),
    ValueSetSpec("migraine-body-weight-units", "Body weight units",
                 "UCUM units of a body weight used to calculate per-kilogram doses.",
                 _units(lambda code, entry: code in BODY_WEIGHT_UNITS)),
    ValueSetSpec("diary-volume-units", "Drink volume units",
                 "UCUM units of volume for drinks recorded in the diary.",
                 _units(lambda code, entry: entry["dimension"] == "volume")),
)


def value_set(spec: ValueSetSpec) -> Resource:
    codes = spec.codes()
    systems: dict[str, list[Code]] = {}
    for code in codes:
        systems.setdefault(code.system, []).append(code)
    resource = common("ValueSet", spec.id, spec.title, spec.description)
    resource["immutable"] = False
    resource["compose"] = {
        "include": [
            {"system": system, "concept": [{"code": c.code, "display": c.display} for c in members]}
            for system, members in systems.items()
        ]
    }
    resource["expansion"] = {
        "identifier": f"urn:uuid:{_expansion_id(spec.id)}",
        "timestamp": f"{RELEASE_DATE}T00:00:00Z",
        "total": len(codes),
        "contains": [{"system": c.system, "code": c.code, "display": c.display} for c in codes],
    }
    return resource


def _expansion_id(vs_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{vs_url(vs_id)}|{VERSION}"))


def value_sets() -> list[Resource]:
    return [value_set(spec) for spec in VALUE_SETS]


# --- CodeSystems -----------------------------------------------------------------------------

# Definitions of the project's own codes, by the table they come from. The codes and displays
# are read from the tables; only these explanations are written here.
DIARY_DEFINITIONS = {
    "location": "Headache location recorded in the diary: {display}.",
    "quality": "Character of the headache pain recorded in the diary: {display}.",
    "symptoms": "Symptom accompanying the headache, recorded in the diary: {display}.",
    "aura": "Aura recorded with the attack: {display}.",
    "triggers": "Trigger of the attack named by the patient: {display}.",
    "disability": "Disability during the attack, grade {value} of 0 to 3: {display}.",
    "route": "Route by which the patient took an acute medication: {display}.",
}
OBSERVATION_DEFINITIONS = {
    "diary_day": "One day of the headache diary: whether the patient had a headache that day.",
    "attack": "A headache attack: its start and end, intensity, features, symptoms and triggers.",
    "headache_as_recorded": "The patient's own answer for the day, kept when another entry's attack overlaps the day.",
    "continued_attack": "This record continues an attack recorded in an earlier entry (the same attack identifier).",
    "peak_intensity": "The highest pain intensity of the attack on a 0 to 10 numeric rating scale.",
    "location": "Where the headache was felt.",
    "quality": "The character of the headache pain.",
    "worse_with_activity": "Whether routine physical activity made the headache worse.",
    "symptom": "A symptom that accompanied the attack.",
    "aura": "An aura before or during the attack.",
    "trigger": "What the patient thinks set off the attack.",
    "disability": "How much the attack limited the patient's activity (0 none to 3 bed rest).",
    "medication_taken": "An acute medication the patient took; the value is the drug.",
    "dose": "The dose of the medication taken.",
    "route": "The route by which the medication was taken.",
    "relief_2h": "Whether the headache was relieved two hours after the medication.",
    "medication_outcome": "How an acute medication worked two hours after it was taken, and what followed "
                          "(rescue medication, recurrence); part of the MedicationStatement.",
    "pain_2h": "Headache pain two hours after the medication on the 4-point scale (none, mild, moderate, severe).",
    "pain_free_2h": "Whether the patient was pain-free two hours after the medication (pain none on the 4-point scale).",
    "mbs_free_2h": "Whether the attack's most bothersome symptom was gone two hours after the medication.",
    "rescue": "Whether the patient took rescue medication after this one.",
    "recurrence_48h": "Whether the headache came back within 48 hours after the medication had relieved it.",
    "oral_intake": "A drink for hydration or electrolytes; the value is the volume.",
    "product": "The name of the drink or product.",
    "infusion_received": "The patient received an infusion of a protocol.",
    "protocol": "The id of the infusion protocol received.",
    "menstruation": "Whether the patient was menstruating on the diary day (true) or not (false).",
    "menstrually_related": "Whether attacks started on day -2 to +3 of menstruation in at least two of every three "
                           "recorded cycles, over at least three cycles (ICHD-3 appendix A1.1.2).",
}
METHOD_DEFINITIONS = {
    "infusion": "Given as an intravenous infusion from a bag: a base fluid with its additives.",
    "push": "Injected intravenously from a syringe over a few minutes (IV push).",
    "injection": "Injected subcutaneously or intramuscularly.",
}
INTENT_DEFINITIONS = {
    "acute": "The protocol treats an ongoing migraine attack (emergency department, infusion clinic).",
    "status-migrainosus": "The protocol treats status migrainosus, an attack lasting more than 72 hours.",
    "preventive": "The protocol is given on a schedule to prevent attacks (for example a nutrient infusion).",
}


@dataclass(frozen=True)
class Concept:
    code: str
    display: str
    definition: str


def _diary_concepts() -> list[Concept]:
    found: list[Concept] = []
    for kind, entries in terminology.diary_codes().items():
        for value, entry in entries.items():
            if entry["system"] != terminology.DIARY_CS:
                continue
            if kind == "observation_codes":
                text = OBSERVATION_DEFINITIONS.get(value, f"Headache diary observation: {entry['display']}.")
            else:
                template = DIARY_DEFINITIONS.get(kind, "Headache diary value: {display}.")
                text = template.format(value=value, display=entry["display"])
            found.append(Concept(entry["code"], entry["display"], text))
    for entries in terminology.diary_codes().values():
        for value, entry in entries.items():
            for earlier in entry.get("earlier", []):
                if earlier["system"] == terminology.DIARY_CS:
                    found.append(Concept(earlier["code"], earlier["display"],
                                         f"Earlier code of the diary value {value!r}, now {entry['system']} "
                                         f"{entry['code']}; read, no longer written."))
    return found


def _infusion_concepts() -> list[Concept]:
    found = [
        Concept(m.code, m.display, METHOD_DEFINITIONS.get(m.code, f"Administration method: {m.display}."))
        for m in _methods()
        if m.system == terminology.INFUSION_CS
    ]
    found += [Concept(i.code, i.display, INTENT_DEFINITIONS[i.code]) for i in _intents()]
    return found


def _project_codes() -> dict[str, Any]:
    """``project_codes.json`` when the tables have one: ``{system URL: {title, concepts}}``."""
    try:
        return table("project_codes.json")  # type: ignore[no-any-return]
    except FileNotFoundError:
        return {}


CODE_SYSTEMS = (
    (terminology.DIARY_CS, "Headache diary codes",
     "Concepts of the headache diary that have no standard code, and the codes of the diary "
     "Observations and their components.", _diary_concepts),
    (terminology.INFUSION_CS, "Migraine infusion codes",
     "How infusion protocol steps are given, and what a protocol is for.", _infusion_concepts),
)


def _merged(listed: list[Concept], used: list[Concept]) -> list[Concept]:
    """The concepts ``project_codes.json`` lists, then any code the tables or the mappings use
    that it lacks (a complete CodeSystem must have every code that is written out)."""
    found = {c.code: c for c in listed}
    for concept in used:
        found.setdefault(concept.code, concept)
    return list(found.values())


def code_systems() -> list[Resource]:
    given = _project_codes()
    result = []
    for url, title, description, used in CODE_SYSTEMS:
        entry = given.get(url, {})
        listed = [Concept(c["code"], c["display"], c["definition"]) for c in entry.get("concepts", [])]
        concepts = _merged(listed, used())
        resource = common("CodeSystem", url.rsplit("/", 1)[-1], entry.get("title", title), description)
        resource.update(
            caseSensitive=True,
            content="complete",
            count=len(concepts),
            concept=[{"code": c.code, "display": c.display, "definition": c.definition} for c in concepts],
        )
        result.append(resource)
    return result
