"""The validator: the base R4 structure, then every profile a resource declares (or is given),
then references inside a Bundle and the codes of the project's CodeSystems.

    validator = Validator.load()            # reads profiles/ once and compiles it
    outcome = validator.validate(resource)  # an OperationOutcome; pure, no I/O
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _codings(value: Any) -> list[tuple[Any, Any]]:
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
                  bundle: dict[str, str] | None, contained: dict[str, str] | None = None) -> list[Issue]:
        kind = resource["resourceType"]
        if kind == "Bundle":
            return self._bundle(resource, path)
        local = {f"#{c.get('id')}": c.get("resourceType", "") for c in resource.get("contained", []) if isinstance(c, dict)}

        def nested(child: dict[str, Any], child_path: str) -> list[Issue]:
            return self._resource(child, child_path, None, bundle, local)

        found = structure.Found([], [])
        out = structure.walk(resource, kind, path, on_resource=nested, found=found)
        meta = resource.get("meta")
        declared = profiles if profiles is not None else (meta.get("profile") if isinstance(meta, dict) else None) or []
        for url in declared if isinstance(declared, list) else []:
            if not isinstance(url, str):
                continue
            compiled = self.profiles.get(url.split("|")[0])
            if compiled is None:
                severity = "error" if url.startswith(PROJECT_BASE) else "warning"
                out.append(Issue(severity, "not-found", "structure", f"profile {url} is not known", path))
            elif compiled.type != kind:
                out.append(Issue("error", "structure", "structure", f"profile {url} is for {compiled.type}, not {kind}", path))
            else:
                self._node(compiled.root, [resource], [path], resource, out)
        known = {**(contained or {}), **local}
        for at, reference in found.references:
            if reference.startswith("#"):
                if reference not in known and reference != "#":
                    out.append(Issue("error", "structure", "reference", f"contained resource {reference} not found", at))
            elif reference.startswith("urn:uuid:") and bundle is not None and reference not in bundle:
                out.append(Issue("error", "structure", "reference", f"{reference} is not an entry of this Bundle", at))
        for at, system, code in found.codings:
            codes = self.code_systems.get(system)
            if codes is not None and code not in codes:
                out.append(Issue("error", "code-invalid", "code", f"unknown code {code!r} in the CodeSystem {system}", at))
        return out

    def _bundle(self, bundle: dict[str, Any], path: str) -> list[Issue]:
        entries = bundle.get("entry", [])
        if not isinstance(entries, list):
            return structure.walk(bundle, "Bundle", path)
        out = structure.walk({k: v for k, v in bundle.items() if k != "entry"}, "Bundle", path)
        urls = {}
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                urls[entry.get("fullUrl", "")] = entry["resource"].get("resourceType", "")
        for i, entry in enumerate(entries):
            entry_path = f"{path}.entry[{i}]"
            if not isinstance(entry, dict):
                out.append(Issue("error", "structure", "structure", "must be an object (BundleEntry)", entry_path))
                continue
            out.extend(structure.walk({k: v for k, v in entry.items() if k != "resource"}, "BundleEntry", entry_path))
            resource = entry.get("resource")
            if resource is None:
                continue
            if not isinstance(resource, dict) or structure.definition(str(resource.get("resourceType"))) is None:
                out.append(Issue("error", "structure", "structure", "must be a resource with a known resourceType",
                                 f"{entry_path}.resource"))
                continue
            out.extend(self._resource(resource, f"{entry_path}.resource", None, urls))
        return out

    # -- profile rules -----------------------------------------------------------------------

    def _node(self, node: Node, items: list[Any], paths: list[str], resource: dict[str, Any],
              out: list[Issue] | None = None) -> list[Issue]:
        """The rules of ``node`` on each of its items, then on their children and slices."""
        if out is None:
            out = []
        children = node.child_list
        item_rules = node.has_item_rules
        for item, path in zip(items, paths):
            if item_rules:
                self._item_rules(node, item, path, resource, out)
            if children and type(item) is dict:
                for child in children:
                    self._child(child, item, path, resource, out)
        return out

    def _child(self, node: Node, parent: dict[str, Any], parent_path: str, resource: dict[str, Any], out: list[Issue]) -> None:
        name = node.name
        base = node.choice_base
        if base is None:
            value = parent.get(name)
            if value is None:
                if node.min:
                    out.append(Issue("error", "required", "cardinality",
                                     f"{name}: minimum required = {node.min}, but only found 0", f"{parent_path}.{name}"))
                if node.slices:
                    self._slices(node, [], [], f"{parent_path}.{name}", resource, out)
                return
            if type(value) is list:
                items = value
                paths = [f"{parent_path}.{name}[{i}]" for i in range(len(value))]
            else:
                items = [value]
                paths = [f"{parent_path}.{name}"]
            key = name
        else:
            size = len(base)
            keys = [k for k in parent if k[:size] == base and len(k) > size and k[size].isupper()]
            for key in keys:
                if node.types and _type_suffix(key, base) not in node.types:
                    out.append(Issue("error", "structure", "type",
                                     f"{base}[x] must be of type {' or '.join(node.types)}, found {key}", f"{parent_path}.{key}"))
            items, paths = [], []
            for key in keys:
                value = parent[key]
                if type(value) is list:
                    items.extend(value)
                    paths.extend(f"{parent_path}.{key}[{i}]" for i in range(len(value)))
                else:
                    items.append(value)
                    paths.append(f"{parent_path}.{key}")
            key = keys[0] if len(keys) == 1 else name
        count = len(items)
        if node.min is not None and count < node.min:
            out.append(Issue("error", "required", "cardinality",
                             f"{name}: minimum required = {node.min}, but only found {count}", f"{parent_path}.{key}"))
        if node.max is not None and count > node.max:
            out.append(Issue("error", "structure", "cardinality", f"{name}: max allowed = {node.max}, but found {count}",
                             f"{parent_path}.{key}"))
        if items:
            self._node(node, items, paths, resource, out)
        if node.slices:
            self._slices(node, items, paths, f"{parent_path}.{key}", resource, out)

    def _item_rules(self, node: Node, item: Any, path: str, resource: dict[str, Any], out: list[Issue]) -> None:
        if node.fixed is not None and item != node.fixed:
            out.append(Issue("error", "value", "fixed", f"value must be exactly {json.dumps(node.fixed)}", path))
        if node.pattern_check is not None and not node.pattern_check(item):
            out.append(Issue("error", "value", "pattern", f"value must match the pattern {json.dumps(node.pattern)}", path))
        if node.target_types and isinstance(item, dict):
            reference = item.get("reference")
            if isinstance(reference, str) and "/" in reference and not reference.startswith(("urn:", "#", "http")):
                target = reference.split("/")[-2]
                if target not in node.target_types:
                    out.append(Issue("error", "structure", "reference",
                                     f"reference to {target} is not allowed here (allowed: {', '.join(node.target_types)})",
                                     f"{path}.reference"))
        if node.binding is not None and node.binding.strength in ("required", "extensible"):
            codes = _codings(item)
            known = node.binding.codes
            inside = [c for c in codes if (c[0], c[1]) in known or (c[0] is None and any(k[1] == c[1] for k in known))]
            if not inside:
                severity = "error" if node.binding.strength == "required" else "warning"
                shown = ", ".join(f"{s}|{c}" if s else c for s, c in codes) or "no code"
                out.append(Issue(severity, "code-invalid", "binding",
                                 f"{shown} is not in the value set {node.binding.value_set} ({node.binding.strength})", path))
        for invariant in node.invariants:
            if not holds(invariant.check, item, resource):
                out.append(Issue(invariant.severity, "invariant", "invariant",
                                 f"{invariant.key}: {invariant.human} ({invariant.expression})", path))

    @staticmethod
    def _indexed_slice(node: Node, item: Any) -> Any:
        """The slice of an item by one look-up of its discriminating value (see compile._index)."""
        assert node.slice_index is not None and node.slice_path is not None
        for value in _at(item, node.slice_path):
            if isinstance(value, dict):
                for coding in value.get("coding", []) if isinstance(value.get("coding"), list) else []:
                    if isinstance(coding, dict):
                        found = node.slice_index.get((coding.get("system"), coding.get("code")))
                        if found is not None:
                            return found
            elif isinstance(value, (str, int, bool)):
                found = node.slice_index.get(value)
                if found is not None:
                    return found
        return None

    def _slices(self, node: Node, items: list[Any], paths: list[str], where: str, resource: dict[str, Any],
                out: list[Issue]) -> None:
        counts = {s.name: 0 for s in node.slices}
        closed = (node.slicing or {}).get("rules") == "closed"
        for item, path in zip(items, paths):
            matched = self._indexed_slice(node, item) if node.slice_index is not None else None
            for candidate in node.slices if node.slice_index is None else ():
                if candidate.discriminators and all(
                    any(_pattern_matches(v, expected) if kind == "pattern" else v == expected for v in _at(item, at))
                    for at, kind, expected in candidate.discriminators
                ):
                    matched = candidate
                    break
            if matched is None:
                if closed:
                    out.append(Issue("error", "structure", "slicing",
                                     f"this element does not match any defined slice of {node.name} (slicing is closed)", path))
                continue
            counts[matched.name] += 1
            self._item_rules(matched.node, item, path, resource, out)
            if type(item) is dict:
                for child in matched.node.child_list:
                    self._child(child, item, path, resource, out)
                for url in matched.node.type_profiles:
                    extension = self.profiles.get(url)
                    if extension is not None:
                        self._node(extension.root, [item], [path], resource, out)
        for candidate in node.slices:
            low, high, found = candidate.node.min, candidate.node.max, counts[candidate.name]
            if low is not None and found < low:
                out.append(Issue("error", "required", "slicing",
                                 f"{node.name}:{candidate.name}: minimum required = {low}, but only found {found}", where))
            if high is not None and found > high:
                out.append(Issue("error", "structure", "slicing",
                                 f"{node.name}:{candidate.name}: max allowed = {high}, but found {found}", where))
