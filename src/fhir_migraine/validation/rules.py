"""A compiled profile tree turned into closures: one function per element of the profile, made
once, that checks that element's values in a resource and calls its children's functions.

Each closure knows in advance what its element asks for (cardinality only, item rules, children,
slices), so validating a resource runs only the checks that exist, with no look-ups of rules.
Paths for messages are built only where a check needs them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from fhir_migraine.validation.compile import Binding, Invariant, Node, Profile, pattern_predicate
from fhir_migraine.validation.fhirpath import holds
from fhir_migraine.validation.issues import Issue

Out = list[Issue]
ChildCheck = Callable[[dict[str, Any], str, dict[str, Any], Out], None]
ItemCheck = Callable[[Any, str, dict[str, Any], Out], None]
ProfileLookup = Callable[[str], "Profile | None"]

_TYPE_NAMES = ("Reference", "CodeableConcept", "Quantity", "Period", "Range", "Ratio", "SampledData", "Attachment",
               "Coding", "Timing", "Duration", "Identifier", "Age", "Money")


def values_at(value: Any, path: str) -> list[Any]:
    """The values at a dotted path below ``value`` (arrays flattened), as FHIRPath reads it."""
    if path == "$this":
        return [value]
    if "." not in path:  # the usual discriminator: one element of the item
        child = value.get(path) if type(value) is dict else None
        return [] if child is None else child if type(child) is list else [child]
    found = [value]
    for name in path.split("."):
        nxt = []
        for item in found:
            if isinstance(item, dict) and name in item:
                child = item[name]
                nxt.extend(child if isinstance(child, list) else [child])
        found = nxt
    return found


_SCALARS = (str, int, float, bool, type(None))


def codings(value: Any) -> list[tuple[Any, Any]]:
    """The (system, code) pairs of a code, Coding or CodeableConcept; parts of another shape are
    left out (the structure check reports them)."""
    if type(value) is str:
        return [(None, value)]
    if type(value) is not dict:
        return []
    items: Any
    if "coding" in value:
        found = value["coding"]
        items = found if type(found) is list else ()
    elif "code" in value:
        items = (value,)
    else:
        return []
    pairs = []
    for coding in items:
        if type(coding) is dict and "code" in coding:
            system, code = coding.get("system"), coding["code"]
            if isinstance(system, _SCALARS) and isinstance(code, _SCALARS):
                pairs.append((system, code))
    return pairs


def type_suffix(key: str, base: str) -> str:
    suffix = key[len(base):]
    return suffix if suffix in _TYPE_NAMES else suffix[:1].lower() + suffix[1:]


def too_few(out: Out, name: str, low: int, count: int, path: str) -> None:
    out.append(Issue("error", "required", "cardinality", f"{name}: minimum required = {low}, but only found {count}", path))


def too_many(out: Out, name: str, high: int, count: int, path: str) -> None:
    out.append(Issue("error", "structure", "cardinality", f"{name}: max allowed = {high}, but found {count}", path))


def wrong_choice_type(out: Out, base: str, types: tuple[str, ...], key: str, path: str) -> None:
    out.append(Issue("error", "structure", "type", f"{base}[x] must be of type {' or '.join(types)}, found {key}", path))


def compile_root(profile: Profile, lookup: ProfileLookup) -> ItemCheck:
    """The check of a whole resource against ``profile``."""
    return _item_and_children(profile.root, lookup) or (lambda item, path, resource, out: None)


def _item_and_children(node: Node, lookup: ProfileLookup) -> ItemCheck | None:
    """What applies to one value of ``node``: its own rules, then its children's checks."""
    rules = item_rules(node)
    children = tuple(child_check(child, lookup) for child in node.child_list)
    if rules is None and not children:
        return None

    def check(item: Any, path: str, resource: dict[str, Any], out: Out) -> None:
        if rules is not None:
            rules(item, path, resource, out)
        if children and type(item) is dict:
            for child in children:
                child(item, path, resource, out)
    return check


def child_check(node: Node, lookup: ProfileLookup) -> ChildCheck:
    """The check of one child element of a value: how many there are, then each of them."""
    name, base, low, high = node.name, node.choice_base, node.min, node.max
    types = node.types
    rules = item_rules(node)
    children = tuple(child_check(child, lookup) for child in node.child_list)
    slices = slices_check(node, lookup) if node.slices else None

    def check(parent: dict[str, Any], parent_path: str, resource: dict[str, Any], out: Out) -> None:
        if base is None:
            value = parent.get(name)
            if value is None:
                if low:
                    too_few(out, name, low, 0, f"{parent_path}.{name}")
                if slices is not None:
                    slices([], [], f"{parent_path}.{name}", resource, out)
                return
            key = name
            if type(value) is list:
                items: list[Any] = value
                many = True
            else:
                items = [value]
                many = False
        else:
            size = len(base)
            keys = [k for k in parent if k[:size] == base and len(k) > size and k[size].isupper()]
            if not keys:
                if low:
                    too_few(out, name, low, 0, f"{parent_path}.{name}")
                return
            for found_key in keys:
                if types and type_suffix(found_key, base) not in types:
                    wrong_choice_type(out, base, types, found_key, f"{parent_path}.{found_key}")
            key = keys[0] if len(keys) == 1 else name
            items = [parent[k] for k in keys]
            many = False
        count = len(items)
        if low is not None and count < low:
            too_few(out, name, low, count, f"{parent_path}.{key}")
        if high is not None and count > high:
            too_many(out, name, high, count, f"{parent_path}.{key}")
        if rules is None and not children and slices is None:
            return
        where = f"{parent_path}.{key}"
        if not many and slices is None:  # the common case: one value
            item = items[0]
            if rules is not None:
                rules(item, where, resource, out)
            if children and type(item) is dict:
                for child in children:
                    child(item, where, resource, out)
            return
        paths = [f"{where}[{i}]" for i in range(count)] if many else [where]
        if rules is not None or children:
            for item, path in zip(items, paths):
                if rules is not None:
                    rules(item, path, resource, out)
                if children and type(item) is dict:
                    for child in children:
                        child(item, path, resource, out)
        if slices is not None:
            slices(items, paths, where, resource, out)
    return check


Accepts = Callable[[Any, dict[str, Any]], bool]  # (value, resource) -> whether the rule holds
Report = Callable[[Any, str, Out], None]  # (value, path, issues): says how the rule is broken


@dataclass(frozen=True)
class Rule:
    """One rule on a value: whether it holds, and the issue when it does not. ``kind`` is the
    rule kind (fixed, pattern, reference, binding, invariant); ``fixed`` is the value a fixed[x]
    rule wants (the generated checks compare it inline)."""

    kind: str
    accepts: Accepts
    report: Report
    fixed: Any = None


def rules_of(node: Node) -> list[Rule]:
    """fixed, pattern, reference targets, binding and invariants of one value."""
    found: list[Rule] = []
    if node.fixed is not None:
        fixed = node.fixed
        message = f"value must be exactly {json.dumps(fixed)}"
        found.append(Rule("fixed", lambda item, resource: item == fixed,
                          lambda item, path, out: out.append(Issue("error", "value", "fixed", message, path)), fixed))
    if node.pattern_check is not None:
        predicate = node.pattern_check
        pattern_message = f"value must match the pattern {json.dumps(node.pattern)}"
        found.append(Rule("pattern", lambda item, resource: bool(predicate(item)),
                          lambda item, path, out: out.append(Issue("error", "value", "pattern", pattern_message, path))))
    if node.target_types:
        found.append(_target_rule(node.target_types))
    if node.binding is not None and node.binding.strength in ("required", "extensible"):
        found.append(_binding_rule(node.binding))
    for invariant in node.invariants:
        found.append(_invariant_rule(invariant))
    return found


def item_rules(node: Node) -> ItemCheck | None:
    """The rules of one value as one check, or None when there are none."""
    pairs = tuple((rule.accepts, rule.report) for rule in rules_of(node))
    if not pairs:
        return None

    def check(item: Any, path: str, resource: dict[str, Any], out: Out) -> None:
        for accepts, report in pairs:
            if not accepts(item, resource):
                report(item, path, out)
    return check


def _referenced_type(item: Any) -> str | None:
    """The resource type a relative literal reference (``Patient/123``) points to."""
    reference = item.get("reference") if type(item) is dict else None
    if isinstance(reference, str) and "/" in reference and not reference.startswith(("urn:", "#", "http")):
        return reference.split("/")[-2]
    return None


def _target_rule(targets: tuple[str, ...]) -> Rule:
    def accepts(item: Any, resource: dict[str, Any]) -> bool:
        target = _referenced_type(item)
        return target is None or target in targets

    def report(item: Any, path: str, out: Out) -> None:
        out.append(Issue("error", "structure", "reference",
                         f"reference to {_referenced_type(item)} is not allowed here (allowed: {', '.join(targets)})",
                         f"{path}.reference"))
    return Rule("reference", accepts, report)


def _binding_rule(binding: Binding) -> Rule:
    known = binding.codes
    known_codes = frozenset(code for _, code in known)
    severity = "error" if binding.strength == "required" else "warning"

    def accepts(item: Any, resource: dict[str, Any]) -> bool:
        for system, code in codings(item):
            if (system, code) in known or (system is None and code in known_codes):
                return True
        return False

    def report(item: Any, path: str, out: Out) -> None:
        shown = ", ".join(f"{s}|{c}" if s else str(c) for s, c in codings(item)) or "no code"
        out.append(Issue(severity, "code-invalid", "binding",
                         f"{shown} is not in the value set {binding.value_set} ({binding.strength})", path))
    return Rule("binding", accepts, report)


def _invariant_rule(invariant: Invariant) -> Rule:
    compiled = invariant.check
    message = f"{invariant.key}: {invariant.human} ({invariant.expression})"
    severity = invariant.severity
    return Rule("invariant", lambda item, resource: holds(compiled, item, resource),
                lambda item, path, out: out.append(Issue(severity, "invariant", "invariant", message, path)))


def _equals(expected: Any) -> Callable[[Any], bool]:
    return lambda value: bool(value == expected)


def slice_of(node: Node) -> Callable[[Any], int | None]:
    """How an item finds its slice (its position in ``node.slices``): one look-up when the slices
    are indexed, else by matching."""
    if node.slice_index is not None and node.slice_path is not None:
        at = node.slice_path
        index = {key: node.slices.index(found) for key, found in node.slice_index.items()}

        def indexed(item: Any) -> int | None:
            for value in values_at(item, at):
                if type(value) is dict:
                    coding_list = value.get("coding")
                    for coding in coding_list if type(coding_list) is list else ():
                        if type(coding) is dict:
                            system, code = coding.get("system"), coding.get("code")
                            if type(code) is not str or not (system is None or type(system) is str):
                                continue  # not a code to look up (the structure check reports it)
                            found = index.get((system, code))
                            if found is not None:
                                return found
                elif isinstance(value, (str, int, bool)):
                    found = index.get(value)
                    if found is not None:
                        return found
            return None
        return indexed
    # Each slice's discriminators as (path, test of one value there); a pattern is compiled once.
    candidates = tuple(
        (position, tuple((at, pattern_predicate(expected) if kind == "pattern" else _equals(expected))
                         for at, kind, expected in candidate.discriminators))
        for position, candidate in enumerate(node.slices) if candidate.discriminators)

    def matching(item: Any) -> int | None:
        for position, tests in candidates:
            if all(any(test(v) for v in values_at(item, at)) for at, test in tests):
                return position
        return None
    return matching


def unsliced(out: Out, element: str, path: str) -> None:
    """An item in no slice of a closed slicing."""
    out.append(Issue("error", "structure", "slicing",
                     f"this element does not match any defined slice of {element} (slicing is closed)", path))


def slice_limits(node: Node) -> Callable[[list[int], str, Out], None]:
    """The check of each slice's cardinality, given how many items each slice has."""
    element = node.name
    limits = tuple((s.name, s.node.min, s.node.max) for s in node.slices)

    def check(counts: list[int], where: str, out: Out) -> None:
        for (name, low, high), found in zip(limits, counts):
            if low is not None and found < low:
                out.append(Issue("error", "required", "slicing",
                                 f"{element}:{name}: minimum required = {low}, but only found {found}", where))
            if high is not None and found > high:
                out.append(Issue("error", "structure", "slicing",
                                 f"{element}:{name}: max allowed = {high}, but found {found}", where))
    return check


def extension_roots(node: Node, lookup: ProfileLookup) -> list[Node]:
    """The root elements of the extension definitions a slice follows (those that are known)."""
    return [found.root for found in (lookup(url) for url in node.type_profiles) if found is not None]


SliceCheck = Callable[[list[Any], list[str], str, dict[str, Any], Out], None]


def slices_check(node: Node, lookup: ProfileLookup) -> SliceCheck:
    """Each item to its slice (closed slicing: an item in none is an error), each slice's rules on
    its items and those of the extension it follows, then each slice's cardinality."""
    which = slice_of(node)
    closed = (node.slicing or {}).get("rules") == "closed"
    element = node.name
    limits = slice_limits(node)
    bodies: list[list[ItemCheck]] | None = None

    def slice_bodies() -> list[list[ItemCheck]]:
        # Made on first use: an extension's definition may be compiled after the profile using it.
        found = []
        for item_slice in node.slices:
            nodes = [item_slice.node, *extension_roots(item_slice.node, lookup)]
            found.append([c for c in (_item_and_children(n, lookup) for n in nodes) if c is not None])
        return found

    def check(items: list[Any], paths: list[str], where: str, resource: dict[str, Any], out: Out) -> None:
        nonlocal bodies
        if bodies is None:
            bodies = slice_bodies()
        counts = [0] * len(bodies)
        for item, path in zip(items, paths):
            matched = which(item)
            if matched is None:
                if closed:
                    unsliced(out, element, path)
                continue
            counts[matched] += 1
            for body in bodies[matched]:
                body(item, path, resource, out)
        limits(counts, where, out)
    return check
