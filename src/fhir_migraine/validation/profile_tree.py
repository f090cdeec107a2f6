"""StructureDefinition differentials compiled into a tree of checks, once per profile.

Each node stands for one element path of the profile (``Observation.component``), with the
rules the differential puts on it: cardinality, fixed and pattern values, allowed types of a
choice, binding, invariants, and slicing with its slices (each a sub-tree of its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_migraine.validation.fhirpath import Compiled, compile_invariant

UNBOUNDED = 10**9


@dataclass
class Invariant:
    key: str
    severity: str
    human: str
    expression: str
    check: Compiled


@dataclass
class Binding:
    strength: str
    value_set: str
    codes: frozenset[tuple[str, str]]  # (system, code) of the ValueSet's expansion


@dataclass
class Slice:
    name: str
    node: Node
    # The discriminating values: (path within the item, kind 'value'|'pattern', expected value)
    discriminators: list[tuple[str, str, Any]] = field(default_factory=list)


@dataclass
class Node:
    """The rules on one element path (choice elements keep their ``[x]`` name)."""

    name: str
    element_id: str = ""  # Observation.component:severity.value[x]
    profile: str = ""  # the url of the profile the node belongs to
    min: int | None = None
    max: int | None = None
    fixed: Any = None
    pattern: Any = None
    types: tuple[str, ...] = ()
    target_types: tuple[str, ...] = ()
    type_profiles: tuple[str, ...] = ()  # e.g. the extension definition an extension slice follows
    binding: Binding | None = None
    invariants: list[Invariant] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)
    slicing: dict[str, Any] | None = None
    slices: list[Slice] = field(default_factory=list)
    # When every slice is told apart by one coded or primitive value at the same path: that
    # path and an index from the value to the slice, so an item finds its slice in one look-up.
    slice_path: str | None = None
    slice_index: dict[Any, Slice] | None = None
    # Set by _finish, so validation skips what a node does not ask for.
    choice_base: str | None = None
    pattern_check: Any = None  # the pattern compiled into a predicate (see pattern_predicate)
    child_list: tuple[Node, ...] = ()

    def child(self, name: str) -> Node:
        if name not in self.children:
            self.children[name] = Node(name, f"{self.element_id}.{name}", self.profile)
        return self.children[name]


@dataclass
class Profile:
    url: str
    type: str
    root: Node


def _segments(element_id: str) -> list[tuple[str, str | None]]:
    """``Observation.component:peak.value[x]`` -> [("component", "peak"), ("value[x]", None)]."""
    parts = element_id.split(".")[1:]
    found = []
    for part in parts:
        name, _, slice_name = part.partition(":")
        found.append((name, slice_name or None))
    return found


def _value_of(element: dict[str, Any], prefix: str) -> Any:
    for key, value in element.items():
        if key.startswith(prefix) and key != prefix:
            return value
    return None


def compile_profile(definition: dict[str, Any], value_sets: dict[str, frozenset[tuple[str, str]]]) -> Profile:
    root = Node(definition["type"], definition["type"], definition["url"])
    for element in definition.get("differential", {}).get("element", []):
        node = root
        for name, slice_name in _segments(element["id"]):
            node = node.child(name)
            if slice_name is not None:
                existing = next((s for s in node.slices if s.name == slice_name), None)
                if existing is None:
                    existing = Slice(slice_name, Node(name, f"{node.element_id}:{slice_name}", node.profile))
                    node.slices.append(existing)
                node = existing.node
        _apply(node, element, value_sets)
    _discriminate(root)
    _finish(root)
    return Profile(definition["url"], definition["type"], root)


def pattern_predicate(pattern: Any) -> Any:
    """FHIR pattern[x] as a predicate: every element of the pattern is present in the value with
    that value; each item of a pattern array matches some item of the value's array."""
    if isinstance(pattern, dict):
        if set(pattern) == {"coding"} and len(pattern["coding"]) == 1 and set(pattern["coding"][0]) <= {"system", "code"}:
            # The commonest pattern, a CodeableConcept with one coding: one pass over the codings.
            system, code = pattern["coding"][0].get("system"), pattern["coding"][0].get("code")

            def has_coding(value: Any) -> bool:
                found = value.get("coding") if type(value) is dict else None
                if type(found) is list:
                    for coding in found:
                        if type(coding) is dict and coding.get("code") == code and coding.get("system") == system:
                            return True
                return False
            return has_coding
        checks = [(key, pattern_predicate(item)) for key, item in pattern.items()]
        return lambda value: type(value) is dict and all(check(value.get(key)) for key, check in checks)
    if isinstance(pattern, list):
        checks_ = [pattern_predicate(item) for item in pattern]
        return lambda value: all(any(check(v) for v in (value if type(value) is list else [])) for check in checks_)
    return lambda value: value == pattern


def _finish(node: Node) -> None:
    node.choice_base = node.name[:-3] if node.name.endswith("[x]") else None
    if node.pattern is not None:
        node.pattern_check = pattern_predicate(node.pattern)
    node.child_list = tuple(node.children.values())
    for child in node.children.values():
        _finish(child)
    for item in node.slices:
        _finish(item.node)


def _apply(node: Node, element: dict[str, Any], value_sets: dict[str, frozenset[tuple[str, str]]]) -> None:
    if "min" in element:
        node.min = int(element["min"])
    if "max" in element:
        node.max = UNBOUNDED if element["max"] == "*" else int(element["max"])
    fixed = _value_of(element, "fixed")
    if fixed is not None:
        node.fixed = fixed
    pattern = _value_of(element, "pattern")
    if pattern is not None:
        node.pattern = pattern
    if "type" in element:
        node.types = tuple(t["code"] for t in element["type"])
        targets = [p.rsplit("/", 1)[-1] for t in element["type"] for p in t.get("targetProfile", [])]
        node.target_types = tuple(targets)
        node.type_profiles = tuple(p for t in element["type"] for p in t.get("profile", []))
    if "binding" in element and "valueSet" in element["binding"]:
        url = element["binding"]["valueSet"].split("|")[0]
        node.binding = Binding(element["binding"]["strength"], url, value_sets.get(url, frozenset()))
    for constraint in element.get("constraint", []):
        check, _ = compile_invariant(constraint["expression"])
        node.invariants.append(Invariant(constraint["key"], constraint.get("severity", "error"),
                                         constraint.get("human", ""), constraint["expression"], check))
    if "slicing" in element:
        node.slicing = element["slicing"]


def _lookup(node: Node, path: str) -> Node | None:
    if path == "$this":
        return node
    for name in path.split("."):
        found = node.children.get(name)
        if found is None:
            return None
        node = found
    return node


def _index_key(kind: str, expected: Any) -> Any:
    """A hashable key for a discriminating value: a single coding, or a primitive."""
    if kind == "value" and isinstance(expected, (str, int, bool)):
        return expected
    if isinstance(expected, dict) and set(expected) == {"coding"} and len(expected["coding"]) == 1:
        coding = expected["coding"][0]
        if set(coding) <= {"system", "code"}:
            return (coding.get("system"), coding.get("code"))
    return None


def _index(node: Node) -> None:
    paths = {d[0] for s in node.slices for d in s.discriminators}
    if len(paths) != 1 or not all(len(s.discriminators) == 1 for s in node.slices):
        return
    index: dict[Any, Slice] = {}
    for item in node.slices:
        _, kind, expected = item.discriminators[0]
        key = _index_key(kind, expected)
        if key is None or key in index:
            return
        index[key] = item
    node.slice_path, node.slice_index = paths.pop(), index


def _discriminate(node: Node) -> None:
    """Work out, for each slice, the value each discriminator path must have."""
    for child in node.children.values():
        _discriminate(child)
    for item in node.slices:
        _discriminate(item.node)
        for discriminator in (node.slicing or {}).get("discriminator", []):
            if discriminator["path"] == "url" and item.node.type_profiles:
                # An extension slice is told apart by the url of the extension it follows.
                item.discriminators.append(("url", "value", item.node.type_profiles[0]))
                continue
            target = _lookup(item.node, discriminator["path"])
            if target is None:
                continue
            expected = target.fixed if target.fixed is not None else target.pattern
            if expected is not None:
                item.discriminators.append((discriminator["path"], discriminator["type"], expected))
    if node.slices:
        _index(node)
