"""Code tables (data files in ``data/``) and pure lookups: drug names to RxNorm, routes and
methods to SNOMED CT, indications to ICD-10-CM, units to UCUM, diary values to their codes; drug classes (WHO ATC) and labelled
daily maxima.

No I/O beyond reading the package's own data files once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from importlib import resources
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ATC = "http://www.whocc.no/atc"

CANONICAL_BASE = "https://fhir-migraine.org/fhir"
DIARY_CS = f"{CANONICAL_BASE}/CodeSystem/migraine-diary"
INFUSION_CS = f"{CANONICAL_BASE}/CodeSystem/migraine-infusion"

SYSTEM_ALIASES = {
    "rxnorm": RXNORM,
    "snomed": SNOMED,
    "snomed-ct": SNOMED,
    "sct": SNOMED,
    "loinc": LOINC,
    "icd-10-cm": ICD10CM,
    "icd10cm": ICD10CM,
}


@dataclass(frozen=True)
class Code:
    """A coding: system URI, code and display."""

    system: str
    code: str
    display: str

    def coding(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True)
class DrugClass:
    """The class of a drug (``triptan``, ``nsaid``, ...; data/drug_classes.json) and its WHO ATC codes."""

    key: str
    display: str
    atc: tuple[Code, ...]


@cache
def _data(name: str) -> Any:
    text = resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    return json.loads(text)


def _code(entry: dict[str, Any]) -> Code:
    return Code(entry["system"], entry["code"], entry["display"])


@cache
def _drug_index() -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = {}
    for entry in _data("drugs.json"):
        for name in [entry["key"], *entry.get("synonyms", [])]:
            index[normalize_name(name)] = entry
    return index


@lru_cache(maxsize=1)
def codings() -> frozenset[tuple[str, str, str]]:
    """Every coding the code tables hold, as (system, code, display); a table keyed by code
    (indications) gives the code by its key."""
    found: set[tuple[str, str, str]] = set()

    def walk(value: Any, key: Any = None) -> None:
        if isinstance(value, dict):
            system, code, display = value.get("system"), value.get("code", key), value.get("display")
            if isinstance(system, str) and isinstance(code, str) and isinstance(display, str):
                found.add((system, code, display))
            for name, item in value.items():
                walk(item, name)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for table in ("drugs", "indications", "routes", "methods", "diary", "prn_reasons"):
        walk(_data(f"{table}.json"))
    return frozenset(found)


def normalize_name(name: str) -> str:
    """Lower-case, single-spaced, with a trailing strength such as ``0.9%`` removed."""
    words = name.strip().lower().replace("’", "'").split()
    if words and words[-1].endswith("%"):
        words = words[:-1]
    return " ".join(words)


def drug(name: str) -> Code | None:
    """The RxNorm ingredient code for a drug name or synonym, or None when the table lacks it."""
    entry = _drug_index().get(normalize_name(name))
    if entry is None or "code" not in entry:
        return None
    return _code(entry)


def drug_products(name: str, route: str) -> tuple[Code, ...]:
    """The product-level RxNorm codes (SCD or SCDF) the table lists for a drug given by ``route``,
    in table order; empty when it lists none (a drug can still be ordered by its ingredient)."""
    entry = _drug_index().get(normalize_name(name))
    if entry is None or "code" not in entry:
        return ()
    return tuple(_code(p) for p in entry.get("products", []) if route in p.get("routes", ()))


def drug_names() -> list[str]:
    """Every drug key of the table, for messages and generated tests."""
    return sorted(entry["key"] for entry in _data("drugs.json") if "code" in entry)


def route(name: str) -> Code:
    return _code(_data("routes.json")[name])


def method(name: str) -> Code:
    return _code(_data("methods.json")[name])


def prn_reason(name: str) -> Code | None:
    """The SNOMED CT finding an "as needed" reason stands for (``nausea``), or None."""
    entry = _data("prn_reasons.json").get(name)
    return _code(entry) if entry is not None else None


def prn_reason_names() -> list[str]:
    return sorted(_data("prn_reasons.json"))


def prn_reason_name(system: str, code: str) -> str | None:
    """The reason a coding stands for: the reverse of ``prn_reason``."""
    for name, entry in _data("prn_reasons.json").items():
        if entry["system"] == system and entry["code"] == code:
            return str(name)
    return None


def indication(system: str, code: str) -> Code | None:
    """An indication code from ICD-10-CM or SNOMED CT, or None if the table lacks it."""
    entry = _data("indications.json").get(code)
    if entry is None or entry["system"] != system:
        return None
    return Code(entry["system"], code, entry["display"])


def resolve_system(name: str) -> str:
    """A system URI from a short name (``icd-10-cm``) or the URI itself."""
    return SYSTEM_ALIASES.get(name.lower(), name)


def short_system(uri: str) -> str:
    """The short name the input contracts use for a system URI, or the URI itself."""
    for short in ("icd-10-cm", "snomed", "rxnorm", "loinc"):
        if SYSTEM_ALIASES[short] == uri:
            return short
    return uri


def units() -> dict[str, Any]:
    return _data("units.json")  # type: ignore[no-any-return]


def diary_codes() -> dict[str, Any]:
    return _data("diary.json")  # type: ignore[no-any-return]


def diary_code(kind: str, value: str | int) -> Code:
    """The code of a diary value: ``diary_code("symptoms", "nausea")``."""
    return _code(diary_codes()[kind][str(value)])


def diary_earlier_codes(kind: str, value: str | int) -> list[Code]:
    """The codes a diary value was written with before it moved to a standard code (read, never
    written: what an EHR already holds keeps being understood)."""
    return [_code(found) for found in diary_codes()[kind][str(value)].get("earlier", [])]


def diary_value(kind: str, system: str, code: str) -> str | None:
    """The diary value a code stands for (its code now or an earlier one), or None: the reverse of
    ``diary_code``."""
    for value, entry in diary_codes()[kind].items():
        if any(c["system"] == system and c["code"] == code for c in (entry, *entry.get("earlier", []))):
            return str(value)
    return None


def observation_code(kind: str) -> Code:
    """The code of a diary Observation or component kind (``attack``, ``peak_intensity``, ...)."""
    return _code(diary_codes()["observation_codes"][kind])


def drug_key(name: str) -> str | None:
    """The table key of a drug name or synonym (``depacon`` -> ``valproate``), or None."""
    entry = _drug_index().get(normalize_name(name))
    return None if entry is None else str(entry["key"])


def drug_ingredients(name: str) -> tuple[str, ...]:
    """The ingredients of a drug as table keys (or names as written): a fixed combination's listed
    ingredients, the parts of a name written as a combination (``lopinavir/ritonavir``), else the
    drug itself (``aspirin`` -> ``("aspirin",)``)."""
    entry = _drug_index().get(normalize_name(name))
    if entry is not None and entry.get("ingredients"):
        return tuple(str(i["key"]) for i in entry["ingredients"])
    parts = [p.strip() for p in normalize_name(name).replace("+", "/").split("/") if p.strip()]
    if entry is not None or len(parts) < 2:
        return (str(entry["key"]) if entry is not None else normalize_name(name),)
    return tuple(drug_key(p) or p for p in parts)


@cache
def _drug_code_index() -> dict[tuple[str, str], str]:
    index: dict[tuple[str, str], str] = {}
    for entry in _data("drugs.json"):
        for coded in [entry, *entry.get("products", [])]:
            if "code" in coded:
                index[(coded["system"], coded["code"])] = str(entry["key"])
    return index


def drug_key_by_code(system: str, code: str) -> str | None:
    """The table key of a drug given by one of its codes (its RxNorm ingredient or a product the
    table lists: ``37418`` -> ``sumatriptan``), or None when the table lacks the code."""
    return _drug_code_index().get((system, code))


def administration_limits(name: str, route: str) -> dict[str, Any] | None:
    """The labelled limits of a drug given by ``route`` (data/administration_limits.json), or None.

    Keys: ``max_rate``, ``min_over``, ``per_period`` (a list), ``plausible_minimum`` (each optional,
    quantities as text) and ``source`` (the label section they come from)."""
    key = drug_key(name)
    for entry in _data("administration_limits.json")["limits"]:
        if entry["drug"] == key and entry["route"] == route:
            return dict(entry)
    return None


def drug_class(name: str) -> DrugClass | None:
    """The class of a drug name or synonym (``Maxalt`` -> triptan, ATC N02CC), or None when the drug
    is not in the table or has no class (saline, lidocaine, valproate, ...)."""
    entry = _drug_index().get(normalize_name(name))
    if entry is None or "class" not in entry:
        return None
    key = str(entry["class"])
    found = _data("drug_classes.json")["classes"][key]
    return DrugClass(key, found["display"], tuple(_code(c) for c in found["atc"]))


def drug_class_display(key: str) -> str:
    """What a class of the class table is called (``triptan`` -> "Triptans (...)")."""
    return str(_data("drug_classes.json")["classes"][key]["display"])


def drug_class_keys() -> list[str]:
    """Every class of the class table, in table order."""
    return list(_data("drug_classes.json")["classes"])


def labelled_routes(name: str) -> frozenset[str]:
    """The routes the labels in data/daily_maxima.json give a drug by: its ``routes`` entry, else the
    routes of its maxima (empty: the table holds no label of it, so nothing is known of its routes)."""
    key = drug_key(name)
    table = _data("daily_maxima.json")
    listed = table.get("routes", {}).get(key)
    if isinstance(listed, dict):
        return frozenset(str(r) for r in listed["routes"])
    return frozenset(str(e["route"]) for e in table["maxima"] if e["drug"] == key)


def daily_doses(name: str, route: str) -> int | None:
    """The most doses of a drug by ``route`` its label allows in 24 hours (``doses`` in
    data/daily_maxima.json: lasmiditan, one), or None when the label counts only the amount."""
    key = drug_key(name)
    for entry in _data("daily_maxima.json")["maxima"]:
        if entry["drug"] == key and entry["route"] == route and "doses" in entry:
            return int(entry["doses"])
    return None


def preventive(name: str) -> bool:
    """Whether the drug is taken to prevent migraine rather than to treat an attack (data/drugs.json
    ``use``), so a diary does not count it as acute medication."""
    entry = _drug_index().get(normalize_name(name))
    return entry is not None and entry.get("use") == "preventive"


def daily_maximum(name: str, route: str) -> tuple[Decimal, str] | None:
    """The labelled largest amount of a drug by ``route`` in 24 hours (data/daily_maxima.json) as
    (amount, UCUM unit), or None when no label number is in the table."""
    key = drug_key(name)
    for entry in _data("daily_maxima.json")["maxima"]:
        if entry["drug"] == key and entry["route"] == route:
            return Decimal(entry["amount"]), str(entry["unit"])
    return None
