"""What ships inside the package and is read at run time: the FHIR package (profiles, value sets,
code systems, examples) and the example protocols that seed an empty protocol library.

Both are package data, read with ``importlib.resources``, so an installed wheel works from any
folder. The top-level ``profiles/`` of the project is the same FHIR package, published as is.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from fhir_migraine.errors import ConfigError

DATA = "data"
FHIR_PACKAGE = "fhir-package"
PROTOCOLS = "protocols"


def fhir_package_folder() -> Traversable:
    """The folder of the FHIR package inside the installed package."""
    return resources.files("fhir_migraine").joinpath(DATA, FHIR_PACKAGE)


def seed_protocols_folder() -> Traversable:
    """The example protocols inside the installed package: the default seed of the library."""
    return resources.files("fhir_migraine").joinpath(DATA, PROTOCOLS)


def package_files(folder: Traversable | None = None) -> dict[str, str]:
    """The FHIR package as ``{relative path: text}`` (``examples/`` included), sorted by path."""
    root = fhir_package_folder() if folder is None else folder
    found: dict[str, str] = {}
    if not root.is_dir():
        return found
    for item in root.iterdir():
        if item.is_file() and item.name.endswith(".json"):
            found[item.name] = item.read_text(encoding="utf-8")
        elif item.is_dir() and item.name == "examples":
            for example in item.iterdir():
                if example.is_file() and example.name.endswith(".json"):
                    found[f"examples/{example.name}"] = example.read_text(encoding="utf-8")
    return dict(sorted(found.items()))


def conformance_resources(folder: Traversable | None = None) -> list[dict[str, Any]]:
    """The package's StructureDefinitions, ValueSets and CodeSystems, parsed, in file-name order.

    A package without a StructureDefinition is a broken installation, and an error: a service
    that started without its profiles would validate nothing and list nothing.
    """
    where = fhir_package_folder() if folder is None else folder
    found = []
    for name, text in package_files(folder).items():
        if "/" in name or name == "package.json":
            continue
        try:
            found.append(json.loads(text))
        except ValueError as exc:
            raise ConfigError(f"the FHIR package at {where} holds {name}, which is not JSON: {exc}") from None
    if not any(r.get("resourceType") == "StructureDefinition" for r in found if isinstance(r, dict)):
        raise ConfigError(
            f"the FHIR package at {where} is missing or has no StructureDefinition; "
            "the installation of fhir-migraine is incomplete (reinstall it)"
        )
    return found
