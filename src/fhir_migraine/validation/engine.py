"""The validator: the base R4 structure, then every profile a resource declares (or is given),
then references inside a Bundle and the codes of the project's CodeSystems.

    validator = Validator.load()            # reads profiles/ once and compiles it
    outcome = validator.validate(resource)  # an OperationOutcome; pure, no I/O
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from fhir_migraine import terminology
from fhir_migraine.config import REPO_ROOT
from fhir_migraine.validation import structure
from fhir_migraine.validation.compile import Node, Profile, compile_profile
from fhir_migraine.validation.fhirpath import holds
from fhir_migraine.validation.issues import Issue, outcome, ranked

PROFILES_DIR = REPO_ROOT / "profiles"
PROJECT_BASE = terminology.CANONICAL_BASE


def _pattern_matches(value: Any, pattern: Any) -> bool:
    """FHIR pattern[x]: every element of the pattern is present in the value with that value;
    each item of a pattern array matches some item of the value's array."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_pattern_matches(value.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        items = value if isinstance(value, list) else []
        return all(any(_pattern_matches(item, p) for item in items) for p in pattern)
    return value == pattern


def _at(value: Any, path: str) -> list[Any]:
    if path == "$this":
        return [value]
    found = [value]
    for name in path.split("."):
        nxt = []
        for item in found:
            if isinstance(item, dict) and name in item:
                child = item[name]
                nxt.extend(child if isinstance(child, list) else [child])
        found = nxt
    return found


def _codings(value: Any) -> list[tuple[str | None, str]]:
    if isinstance(value, str):
        return [(None, value)]
    if isinstance(value, dict) and "coding" in value:
        return [(c.get("system"), c.get("code")) for c in value.get("coding", []) if isinstance(c, dict) and "code" in c]
    if isinstance(value, dict) and "code" in value:
        return [(value.get("system"), value["code"])]
    return []


def _type_suffix(key: str, base: str) -> str:
    suffix = key[len(base):]
    return suffix if suffix in ("Reference", "CodeableConcept", "Quantity", "Period", "Range", "Ratio", "SampledData",
                                "Attachment", "Coding", "Timing", "Duration", "Identifier", "Age", "Money") \
        else suffix[0].lower() + suffix[1:]


@dataclass
class Validator:
    """The project's profiles, compiled."""

    profiles: dict[str, Profile]
    code_systems: dict[str, frozenset[str]]

    @classmethod
    def load(cls, folder: Path = PROFILES_DIR) -> "Validator":
        definitions, value_sets, code_systems = [], {}, {}
        for path in sorted(folder.glob("*.json")):
            resource = json.loads(path.read_text(encoding="utf-8"))
            kind = resource.get("resourceType")
            if kind == "StructureDefinition":
                definitions.append(resource)
            elif kind == "ValueSet":
                contains = resource.get("expansion", {}).get("contains", [])
                value_sets[resource["url"]] = frozenset((c.get("system"), c["code"]) for c in contains)
            elif kind == "CodeSystem":
                code_systems[resource["url"]] = frozenset(c["code"] for c in resource.get("concept", []))
        profiles = {d["url"]: compile_profile(d, value_sets) for d in definitions}
        return cls(profiles, code_systems)

    def validate(self, resource: Any, *, profile: str | None = None) -> dict[str, Any]:
        """The OperationOutcome of a resource or a Bundle (each entry with its own profiles)."""
        return outcome(self.issues(resource, profile=profile))

    def issues(self, resource: Any, *, profile: str | None = None) -> list[Issue]:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            return [Issue("fatal", "structure", "structure", "not a FHIR resource (no resourceType)", "$")]
        kind = resource["resourceType"]
        if structure.definition(kind) is None:
            return [Issue("fatal", "structure", "structure", f"unknown resourceType {kind!r}", kind)]
        return ranked(self._resource(resource, kind, [profile] if profile else None, bundle=None))

    # -- one resource ------------------------------------------------------------------------

    def _resource(self, resource: dict[str, Any], path: str, profiles: list[str] | None,
                  bundle: dict[str, str] | None, contained: dict[str, str] | None = None) -> Iterator[Issue]:
        kind = resource["resourceType"]
        local = {f"#{c.get('id')}": c.get("resourceType", "") for c in resource.get("contained", []) if isinstance(c, dict)}

        def nested(child: dict[str, Any], child_path: str) -> Iterator[Issue]:
            yield from self._resource(child, child_path, None, bundle, local)

        if kind == "Bundle":
            yield from self._bundle(resource, path)
            return
        yield from structure.walk(resource, kind, path, on_resource=nested)
        declared = profiles if profiles is not None else resource.get("meta", {}).get("profile", []) or []
        for url in declared:
            if not isinstance(url, str):
                continue
            compiled = self.profiles.get(url.split("|")[0])
            if compiled is None:
                severity = "error" if url.startswith(PROJECT_BASE) else "warning"
                yield Issue(severity, "not-found", "structure", f"profile {url} is not known", path)
                continue
            if compiled.type != kind:
                yield Issue("error", "structure", "structure", f"profile {url} is for {compiled.type}, not {kind}", path)
                continue
            yield from self._node(compiled.root, [resource], [path], resource)
        yield from self._references(resource, path, bundle, {**(contained or {}), **local})
        yield from self._project_codes(resource, path)

    def _bundle(self, bundle: dict[str, Any], path: str) -> Iterator[Issue]:
        yield from structure.walk({k: v for k, v in bundle.items() if k != "entry"}, "Bundle", path)
        entries = bundle.get("entry", [])
        if not isinstance(entries, list):
            yield from structure.walk(bundle, "Bundle", path)
            return
        urls = {}
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                urls[entry.get("fullUrl", "")] = entry["resource"].get("resourceType", "")
        for i, entry in enumerate(entries):
            entry_path = f"{path}.entry[{i}]"
            if not isinstance(entry, dict):
                yield Issue("error", "structure", "structure", "must be an object (BundleEntry)", entry_path)
                continue
            yield from structure.walk({k: v for k, v in entry.items() if k != "resource"}, "BundleEntry", entry_path)
            resource = entry.get("resource")
            if resource is None:
                continue
            if not isinstance(resource, dict) or structure.definition(str(resource.get("resourceType"))) is None:
                yield Issue("error", "structure", "structure", "must be a resource with a known resourceType", f"{entry_path}.resource")
                continue
            yield from self._resource(resource, f"{entry_path}.resource", None, urls)

    # -- profile rules -----------------------------------------------------------------------

    def _node(self, node: Node, items: list[Any], paths: list[str], resource: dict[str, Any]) -> Iterator[Issue]:
        """The rules of ``node`` on each of its items, then on their children and slices."""
        for item, path in zip(items, paths):
            yield from self._item_rules(node, item, path, resource)
            if not isinstance(item, dict):
                continue
            for child in node.children.values():
                yield from self._child(child, item, path, resource)

    def _child(self, node: Node, parent: dict[str, Any], parent_path: str, resource: dict[str, Any]) -> Iterator[Issue]:
        name = node.name
        if name.endswith("[x]"):
            base = name[:-3]
            keys = [k for k in parent if k.startswith(base) and len(k) > len(base) and k[len(base)].isupper()]
            for key in keys:
                if node.types and _type_suffix(key, base) not in node.types:
                    yield Issue("error", "structure", "type",
                                f"{base}[x] must be of type {' or '.join(node.types)}, found {key}", f"{parent_path}.{key}")
        else:
            keys = [name] if name in parent else []
        items: list[Any] = []
        paths: list[str] = []
        for key in keys:
            value = parent[key]
            if isinstance(value, list):
                items.extend(value)
                paths.extend(f"{parent_path}.{key}[{i}]" for i in range(len(value)))
            else:
                items.append(value)
                paths.append(f"{parent_path}.{key}")
        where = f"{parent_path}.{keys[0] if len(keys) == 1 else name}"
        if node.min is not None and len(items) < node.min:
            yield Issue("error", "required", "cardinality",
                        f"{name}: minimum required = {node.min}, but only found {len(items)}", where)
        if node.max is not None and len(items) > node.max:
            yield Issue("error", "structure", "cardinality",
                        f"{name}: max allowed = {node.max}, but found {len(items)}", where)
        yield from self._node(node, items, paths, resource)
        if node.slices:
            yield from self._slices(node, items, paths, where, resource)

    def _item_rules(self, node: Node, item: Any, path: str, resource: dict[str, Any]) -> Iterator[Issue]:
        if node.fixed is not None and item != node.fixed:
            yield Issue("error", "value", "fixed", f"value must be exactly {json.dumps(node.fixed)}", path)
        if node.pattern is not None and not _pattern_matches(item, node.pattern):
            yield Issue("error", "value", "pattern", f"value must match the pattern {json.dumps(node.pattern)}", path)
        if node.target_types and isinstance(item, dict):
            reference = item.get("reference")
            if isinstance(reference, str) and "/" in reference and not reference.startswith(("urn:", "#", "http")):
                target = reference.split("/")[-2]
                if target not in node.target_types:
                    yield Issue("error", "structure", "reference",
                                f"reference to {target} is not allowed here (allowed: {', '.join(node.target_types)})", f"{path}.reference")
        if node.binding is not None and node.binding.strength in ("required", "extensible"):
            codes = _codings(item)
            known = node.binding.codes
            inside = [c for c in codes if (c[0], c[1]) in known or (c[0] is None and any(k[1] == c[1] for k in known))]
            if not inside:
                severity = "error" if node.binding.strength == "required" else "warning"
                shown = ", ".join(f"{s}|{c}" if s else c for s, c in codes) or "no code"
                yield Issue(severity, "code-invalid", "binding",
                            f"{shown} is not in the value set {node.binding.value_set} ({node.binding.strength})", path)
        for invariant in node.invariants:
            if not holds(invariant.check, item, resource):
                yield Issue(invariant.severity, "invariant", "invariant",
                            f"{invariant.key}: {invariant.human} ({invariant.expression})", path)

    def _slices(self, node: Node, items: list[Any], paths: list[str], where: str, resource: dict[str, Any]) -> Iterator[Issue]:
        counts = {s.name: 0 for s in node.slices}
        closed = (node.slicing or {}).get("rules") == "closed"
        for item, path in zip(items, paths):
            matched = None
            for candidate in node.slices:
                if candidate.discriminators and all(
                    any(_pattern_matches(v, expected) if kind == "pattern" else v == expected for v in _at(item, at))
                    for at, kind, expected in candidate.discriminators
                ):
                    matched = candidate
                    break
            if matched is None:
                if closed:
                    yield Issue("error", "structure", "slicing",
                                f"this element does not match any defined slice of {node.name} (slicing is closed)", path)
                continue
            counts[matched.name] += 1
            yield from self._item_rules(matched.node, item, path, resource)
            if isinstance(item, dict):
                for child in matched.node.children.values():
                    yield from self._child(child, item, path, resource)
                for url in matched.node.type_profiles:
                    extension = self.profiles.get(url)
                    if extension is not None:
                        yield from self._node(extension.root, [item], [path], resource)
        for candidate in node.slices:
            low, high, found = candidate.node.min, candidate.node.max, counts[candidate.name]
            if low is not None and found < low:
                yield Issue("error", "required", "slicing",
                            f"{node.name}:{candidate.name}: minimum required = {low}, but only found {found}", where)
            if high is not None and found > high:
                yield Issue("error", "structure", "slicing",
                            f"{node.name}:{candidate.name}: max allowed = {high}, but found {found}", where)

    # -- references and project codes --------------------------------------------------------

    def _references(self, resource: Any, path: str, bundle: dict[str, str] | None, contained: dict[str, str]) -> Iterator[Issue]:
        for at, reference in _all_references(resource, path):
            if reference.startswith("#"):
                if reference not in contained and reference != "#":
                    yield Issue("error", "structure", "reference", f"contained resource {reference} not found", at)
            elif reference.startswith("urn:uuid:") and bundle is not None and reference not in bundle:
                yield Issue("error", "structure", "reference", f"{reference} is not an entry of this Bundle", at)

    def _project_codes(self, resource: Any, path: str) -> Iterator[Issue]:
        for at, system, code in _all_codings(resource, path):
            known = self.code_systems.get(system)
            if known is not None and code not in known:
                yield Issue("error", "code-invalid", "code", f"unknown code {code!r} in the CodeSystem {system}", at)


def _all_references(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield f"{path}.reference", item
            elif key not in ("contained", "resource"):
                yield from _all_references(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _all_references(item, f"{path}[{i}]")


def _all_codings(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    if isinstance(value, dict):
        if isinstance(value.get("system"), str) and isinstance(value.get("code"), str):
            yield path, value["system"], value["code"]
        for key, item in value.items():
            if key not in ("contained", "resource"):
                yield from _all_codings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _all_codings(item, f"{path}[{i}]")
