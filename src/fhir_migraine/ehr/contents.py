"""Pure helpers of the write strategies: a resource's business identifier, digests of its content,
the elements two versions differ in, the order resources must be written in so that each exists
before anything refers to it, and the rewriting of ``urn:uuid`` references to the server's ids.

Content is compared on the elements this project sends, less ``id``, ``meta`` (the server's) and
``text`` (the narrative follows the data): elements the server adds are not differences.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from fhir_migraine.mapping.fhir import identifiers, references

Resource = dict[str, Any]
#: Elements that are the server's, or follow from the others: never compared.
NOT_COMPARED = frozenset({"resourceType", "id", "meta", "text"})


def business_identifier(resource: Resource) -> str | None:
    """``system|value`` of the resource's first identifier (every resource this project makes has one)."""
    for ident in identifiers(resource):
        if isinstance(ident, dict) and isinstance(ident.get("system"), str) and isinstance(ident.get("value"), str):
            return f"{ident['system']}|{ident['value']}"
    return None


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def element_digests(resource: Resource) -> dict[str, str]:
    """A digest of each compared top-level element."""
    return {key: _hash(value) for key, value in resource.items() if key not in NOT_COMPARED}


def digest(resource: Resource) -> str:
    """One digest of the compared content."""
    return _hash(element_digests(resource))


def changed_elements(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The elements whose digests differ (present in one and not the other included), sorted."""
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def differs_from(ours: Resource, theirs: Resource) -> list[str]:
    """The elements of ours that the server's resource does not hold as sent (elements only the
    server has are ignored: it may add its own)."""
    return sorted(key for key, value in ours.items()
                  if key not in NOT_COMPARED and _hash(value) != _hash(theirs.get(key)))


def rewrite(value: Any, ids: Mapping[str, str]) -> Any:
    """A copy with each reference named in ``ids`` (``urn:uuid:…`` → ``Type/id``) replaced."""
    if isinstance(value, dict):
        return {key: (ids.get(item, item) if key == "reference" and isinstance(item, str) else rewrite(item, ids))
                for key, item in value.items()}
    if isinstance(value, list):
        return [rewrite(item, ids) for item in value]
    return value


def layers(entries: list[Resource]) -> list[list[int]]:
    """The entries' indexes in layers: each entry comes after every entry of the same Bundle it
    refers to (by ``fullUrl``), so a diary day follows its members and a RequestGroup its
    MedicationRequests. Within a layer, the Bundle's order. A cycle (which the maps never make)
    ends in one last layer."""
    urls = {entry.get("fullUrl"): i for i, entry in enumerate(entries)}
    needs = [{urls[r] for r in references(entry.get("resource")) if urls.get(r, i) != i}
             for i, entry in enumerate(entries)]
    done: set[int] = set()
    found: list[list[int]] = []
    while len(done) < len(entries):
        layer = [i for i in range(len(entries)) if i not in done and needs[i] <= done]
        if not layer:
            layer = [i for i in range(len(entries)) if i not in done]
        found.append(layer)
        done.update(layer)
    return found


def without_references(value: Any, targets: set[str]) -> Any:
    """A copy with every Reference to one of ``targets`` left out (a list keeps its other items;
    an element left empty is dropped)."""
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            if isinstance(item, dict) and item.get("reference") in targets:
                continue
            found = without_references(item, targets)
            if found in ([], {}) and item not in ([], {}):
                continue
            kept[key] = found
        return kept
    if isinstance(value, list):
        items = [without_references(i, targets) for i in value
                 if not (isinstance(i, dict) and i.get("reference") in targets)]
        return [i for i in items if i != {}]
    return value


def in_cycles(entries: list[Resource]) -> list[int]:
    """The indexes of the entries that refer, through the Bundle's ``fullUrl`` references, back to
    themselves (an order's DHE request and the DetectedIssue implicating it); in order."""
    urls = {entry.get("fullUrl"): i for i, entry in enumerate(entries)}
    targets = [{urls[r] for r in references(entry.get("resource")) if r in urls} for entry in entries]

    def reaches(start: int) -> bool:
        seen, todo = set(), list(targets[start])
        while todo:
            node = todo.pop()
            if node == start:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(targets[node])
        return False

    return [i for i in range(len(entries)) if reaches(i)]
