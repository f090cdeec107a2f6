"""Patient matching: a subject given by identifier (an MRN) becomes the literal ``Patient/<id>`` the
EHR knows it by, found with ``Patient?identifier=system|value`` (FHIR R4 search: a token parameter
given as ``[system]|[code]`` matches that identifier exactly).

Exactly one match is used; none is ``PatientUnknown`` (retryable: the patient may be registered
later); several is ``PatientAmbiguous`` (final: which one is meant is never guessed). The Bundle
kept in the outbox is not changed: what is sent is a copy with the references replaced.
"""

from __future__ import annotations

from typing import Any

from fhir_migraine.ehr.interface import Searches
from fhir_migraine.errors import InputError, PatientAmbiguous, PatientUnknown, Problem
from fhir_migraine.mapping.fhir import token

Resource = dict[str, Any]
#: How a patient given by identifier is written where a reference is asked (``pull --patient``).
PREFIX = "identifier="


def parse_identifier(text: str, path: str = "$.patient") -> tuple[str, str] | None:
    """``(system, value)`` of ``identifier=SYSTEM|VALUE``; None for text of another form (a
    reference); InputError naming ``path`` when the form is started but incomplete."""
    if not text.startswith(PREFIX):
        return None
    system, bar, value = text[len(PREFIX):].partition("|")
    if not bar or not system.strip() or not value.strip():
        raise InputError.of([Problem(path, f"{text!r} is not an identifier such as identifier=SYSTEM|VALUE")],
                            "request")
    return system, value


def key(system: str, value: str) -> str:
    """How an identifier is named in the outbox (its patients, its resolutions): ``system|value``."""
    return f"{system}|{value}"


def find_patient(ehr: Searches, system: str, value: str) -> str:
    """``Patient/<id>`` of the one Patient carrying the identifier; PatientUnknown when none does,
    PatientAmbiguous naming the count when several do. Patients the EHR answers with that do not
    carry the identifier (an EHR ignoring the parameter) are not counted."""
    ids: list[str] = []
    for page in ehr.search("Patient", {"identifier": token(system, value)}):
        for entry in page.get("entry", []) or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            search = entry.get("search") if isinstance(entry, dict) else None
            if isinstance(search, dict) and search.get("mode") not in (None, "match"):
                continue  # an OperationOutcome or an included resource, not a match
            if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
                continue
            if _carries(resource, system, value) and isinstance(resource.get("id"), str) \
                    and resource["id"] not in ids:
                ids.append(resource["id"])
    named = f"the identifier {key(system, value)}"
    if not ids:
        raise PatientUnknown(f"no Patient in the EHR has {named} (waiting for the patient to be registered; "
                             "asked again at the next attempt)")
    if len(ids) > 1:
        raise PatientAmbiguous(f"{len(ids)} Patients in the EHR have {named}: not guessing which one is meant "
                               "(merge them in the EHR, or give the subject as Patient/<id>)")
    return f"Patient/{ids[0]}"


def _carries(patient: Resource, system: str, value: str) -> bool:
    identifiers = patient.get("identifier")
    return isinstance(identifiers, list) and any(
        isinstance(i, dict) and i.get("system") == system and i.get("value") == value for i in identifiers)


def subjects_by_identifier(bundle: Resource) -> list[tuple[str, str]]:
    """The identifiers of the patients a Bundle's resources have as ``subject`` or ``patient``
    without a literal reference, each once, in order."""
    found: list[tuple[str, str]] = []
    for entry in bundle.get("entry", []) or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        for field in ("subject", "patient"):
            target = resource.get(field)
            pair = _identifier_of(target) if isinstance(target, dict) else None
            if pair is not None and pair not in found:
                found.append(pair)
    return found


def _identifier_of(reference: Resource) -> tuple[str, str] | None:
    """``(system, value)`` of a Reference given by identifier only (to a Patient or of no stated type)."""
    ident = reference.get("identifier")
    if "reference" in reference or reference.get("type", "Patient") != "Patient" or not isinstance(ident, dict):
        return None
    system, value = ident.get("system"), ident.get("value")
    return (system, value) if isinstance(system, str) and isinstance(value, str) else None


def resolve(ehr: Searches, bundle: Resource, known: dict[str, str]) -> tuple[Resource, dict[str, str]]:
    """The Bundle to send, with every reference to a patient given by identifier replaced by its
    literal reference, and the resolutions (``known`` and those found now). Identifiers in ``known``
    are not searched again, so every part of an outbox item names the same Patient."""
    resolved = dict(known)
    for system, value in subjects_by_identifier(bundle):
        if key(system, value) not in resolved:
            resolved[key(system, value)] = find_patient(ehr, system, value)
    if not resolved:
        return bundle, resolved
    return _replaced(bundle, resolved), resolved


def _replaced(node: Any, resolved: dict[str, str]) -> Any:
    """A copy of ``node`` with each Reference by a resolved identifier made a literal reference."""
    if isinstance(node, list):
        return [_replaced(n, resolved) for n in node]
    if not isinstance(node, dict):
        return node
    pair = _identifier_of(node)
    if pair is not None and key(*pair) in resolved:
        kept = {k: v for k, v in node.items() if k not in ("identifier", "type")}
        return {"reference": resolved[key(*pair)], **kept}
    return {k: _replaced(v, resolved) for k, v in node.items()}
