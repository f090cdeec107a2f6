"""A small vocabulary for writing differentials: one call per ElementDefinition, keyed by its id.

An element id such as ``Observation.component:peakIntensity.value[x]`` gives both the path
(``Observation.component.value[x]``, slice names removed) and, when the id ends with a slice,
the ``sliceName``. Spec: https://hl7.org/fhir/R4/elementdefinition.html#id
"""

from __future__ import annotations

import re
from typing import Any

from fhir_migraine import terminology

Element = dict[str, Any]

CANONICAL = terminology.CANONICAL_BASE
CORE = "http://hl7.org/fhir/StructureDefinition"

_SLICE = re.compile(r":[^.]+")


def sd_url(sd_id: str) -> str:
    return f"{CANONICAL}/StructureDefinition/{sd_id}"


def vs_url(vs_id: str) -> str:
    return f"{CANONICAL}/ValueSet/{vs_id}"


def path_of(element_id: str) -> str:
    return _SLICE.sub("", element_id)


def el(
    element_id: str,
    *,
    min: int | None = None,
    max: int | str | None = None,
    short: str | None = None,
    definition: str | None = None,
    slicing: Element | None = None,
    types: list[Element] | None = None,
    fixed: tuple[str, Any] | None = None,
    pattern: tuple[str, Any] | None = None,
    constraint: list[Element] | None = None,
    binding: str | None = None,
) -> Element:
    """One ElementDefinition of a differential, its keys in the order the spec lists them.

    ``fixed``/``pattern`` are ``(type, value)``: ``("Uri", "http://...")`` becomes ``fixedUri``;
    ``binding`` is the id of one of the package's ValueSets, always bound ``required``.
    """
    element: Element = {"id": element_id, "path": path_of(element_id)}
    last = element_id.rsplit(".", 1)[-1]
    if ":" in last:
        element["sliceName"] = last.split(":", 1)[1]
    if short is not None:
        element["short"] = short
    if definition is not None:
        element["definition"] = definition
    if slicing is not None:
        element["slicing"] = slicing
    if min is not None:
        element["min"] = min
    if max is not None:
        element["max"] = str(max)
    if types is not None:
        element["type"] = types
    if fixed is not None:
        element[f"fixed{fixed[0]}"] = fixed[1]
    if pattern is not None:
        element[f"pattern{pattern[0]}"] = pattern[1]
    if constraint is not None:
        element["constraint"] = constraint
    if binding is not None:
        element["binding"] = {"strength": "required", "valueSet": vs_url(binding)}
    return element


def of_type(*codes: str) -> list[Element]:
    """A type restriction: ``of_type("dateTime")`` keeps only that choice."""
    return [{"code": code} for code in codes]


def reference(*targets: str) -> list[Element]:
    """``Reference(Patient | ...)`` to core resource types."""
    return [{"code": "Reference", "targetProfile": [f"{CORE}/{t}" for t in targets]}]


def canonical_to(*targets: str) -> list[Element]:
    return [{"code": "canonical", "targetProfile": [f"{CORE}/{t}" for t in targets]}]


def extension(extension_id: str) -> list[Element]:
    """The type of an extension slice: Extension with the package's extension definition."""
    return [{"code": "Extension", "profile": [sd_url(extension_id)]}]


def sliced_by(kind: str, path: str, *, rules: str = "open", description: str | None = None) -> Element:
    """One discriminator (``value`` or ``pattern``), unordered."""
    result: Element = {"discriminator": [{"type": kind, "path": path}]}
    if description is not None:
        result["description"] = description
    result["ordered"] = False
    result["rules"] = rules
    return result


EXTENSIONS_BY_URL = sliced_by("value", "url", description="Extensions are always sliced by (at least) url")


def invariant(key: str, human: str, expression: str) -> Element:
    """An error-level FHIRPath invariant."""
    return {"key": key, "severity": "error", "human": human, "expression": expression}


def coding_pattern(code: terminology.Code) -> Element:
    """A CodeableConcept pattern on system and code only (displays may change with the tables)."""
    return {"coding": [{"system": code.system, "code": code.code}]}
