"""Small FHIR building blocks shared by the maps: identifiers, transaction entries, codes."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from fhir_migraine import terminology
from fhir_migraine.terminology import Code

EXTENSION_BASE = f"{terminology.CANONICAL_BASE}/StructureDefinition"
MIN_SESSION_EXT = f"{EXTENSION_BASE}/minimum-session-duration"
ORDERED_DOSE_EXT = f"{EXTENSION_BASE}/ordered-dose"
DOSE_CEILING_EXT = f"{EXTENSION_BASE}/dose-ceiling"


def profile(profile_id: str) -> dict[str, list[str]]:
    """``meta`` declaring one of the project's profiles (see profiles/ and docs/profiles.md)."""
    return {"profile": [f"{EXTENSION_BASE}/{profile_id}"]}
DOSE_RATE_TYPE = "http://terminology.hl7.org/CodeSystem/dose-rate-type"

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, terminology.CANONICAL_BASE)

Resource = dict[str, Any]


def identifier(system: str, value: str) -> dict[str, str]:
    return {"system": system, "value": value}


def full_url(ident: dict[str, str]) -> str:
    """A stable ``urn:uuid`` for a resource, derived from its business identifier."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, ident['system'] + '|' + ident['value'])}"


def escaped(text: str) -> str:
    """A search value with FHIR's special characters escaped (R4 search, "Escaping Search Parameters":
    a backslash, ``|``, ``,`` and ``$`` are each preceded by a backslash to stand for themselves)."""
    for char in ("\\", "|", ",", "$"):
        text = text.replace(char, "\\" + char)
    return text


def token(system: str, value: str) -> str:
    """The token search value ``system|value``, each side escaped."""
    return f"{escaped(system)}|{escaped(value)}"


def if_none_exist(ident: dict[str, str]) -> str:
    """The conditional-create query on a business identifier (a token search, as a query string)."""
    return "identifier=" + quote(escaped(ident["system"]), safe=":/") + "|" + quote(escaped(ident["value"]), safe="")


def identifiers(resource: Resource) -> list[Any]:
    """A resource's identifiers as a list: most types have a list, a few (QuestionnaireResponse
    in R4) a single Identifier."""
    found = resource.get("identifier")
    if isinstance(found, dict):
        return [found]
    return found if isinstance(found, list) else []


def create_entry(resource: Resource) -> Resource:
    """A transaction entry: conditional create on the resource's first identifier."""
    ident = identifiers(resource)[0]
    return {
        "fullUrl": full_url(ident),
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], "ifNoneExist": if_none_exist(ident)},
    }


def transaction(resources: list[Resource]) -> Resource:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [create_entry(r) for r in resources]}


def concept(code: Code, text: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"coding": [code.coding()]}
    if text is not None:
        result["text"] = text
    return result


def subject(patient: dict[str, Any]) -> dict[str, Any]:
    """A reference to the patient: literal (``Patient/123``) or logical (by identifier)."""
    if "reference" in patient:
        return {"reference": patient["reference"]}
    return {"identifier": dict(patient["identifier"])}


def patient_key(patient: dict[str, Any]) -> str:
    """The patient's part of an identifier (a summary's, an attack's): the id of ``Patient/<id>``, or
    the identifier's value."""
    if "reference" in patient:
        return str(patient["reference"]).rsplit("/", 1)[-1]
    return str(patient.get("identifier", {}).get("value", "unknown"))


def first_identifier(resource: Resource, system: str) -> str | None:
    for ident in identifiers(resource):
        if isinstance(ident, dict) and ident.get("system") == system:
            value = ident.get("value")
            return value if isinstance(value, str) else None
    return None


def references(value: Any) -> set[str]:
    """Every ``urn:uuid`` reference inside a resource."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and item.startswith("urn:uuid:"):
                found.add(item)
            else:
                found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def split_transaction(bundle: Resource, size: int) -> list[Resource]:
    """The entries in transactions of at most ``size`` entries, keeping entries that reference
    each other (a diary day and its members, an order's requests and group) together."""
    entries = bundle.get("entry", [])
    index = {e["fullUrl"]: i for i, e in enumerate(entries)}
    parent = list(range(len(entries)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, entry in enumerate(entries):
        for target in references(entry["resource"]):
            if target in index:
                parent[root(i)] = root(index[target])
    groups: dict[int, list[Resource]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(root(i), []).append(entry)
    parts: list[list[Resource]] = [[]]
    for group in groups.values():
        if parts[-1] and len(parts[-1]) + len(group) > size:
            parts.append([])
        parts[-1].extend(group)
    return [{"resourceType": "Bundle", "type": "transaction", "entry": part} for part in parts if part]
