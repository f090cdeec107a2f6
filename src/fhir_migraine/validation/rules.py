"""The rule kinds, each defined once: what it is called, how an issue of it is shown, the test of
a value (for the rules a profile element puts on one value) and the report that words a broken
rule. The generated checks (generator.py) call these; nothing here walks a resource.

    for rule in rules_of(node):          # fixed, pattern, reference, binding, invariant
        if not rule.accepts(value, resource):
            rule.report(value, path, out)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_migraine.validation.fhirpath import holds
from fhir_migraine.validation.issues import Issue
from fhir_migraine.validation.profile_tree import Binding, Invariant, Node, Profile, pattern_predicate

Out = list[Issue]
ProfileLookup = Callable[[str], "Profile | None"]


@dataclass(frozen=True)
class Kind:
    """A rule kind: its name (Issue.rule), the kind shown to a reader (details.text) and its
    FHIR IssueType code."""

    name: str
    shown: str
    code: str


KINDS = {kind.name: kind for kind in (
    Kind("min", "cardinality", "required"),
    Kind("max", "cardinality", "structure"),
    Kind("fixed", "fixed", "value"),
    Kind("pattern", "pattern", "value"),
    Kind("binding", "binding", "code-invalid"),
    Kind("slice", "slicing", "structure"),
    Kind("invariant", "invariant", "invariant"),
    Kind("type", "type", "structure"),
    Kind("reference", "reference", "structure"),
    Kind("structure", "structure", "structure"),
    Kind("unknown", "unknown", "structure"),
    Kind("code", "code", "code-invalid"),
)}


def issue(rule: str, message: str, path: str, node: Node | None = None, *, element: str | None = None,
          severity: str = "error", code: str | None = None, key: str | None = None) -> Issue:
    """An issue of the rule kind ``rule``, from profile element ``node`` (None: the base spec,
    whose element id is ``element``)."""
    kind = KINDS[rule]
    if node is not None:
        return Issue(severity, code or kind.code, kind.shown, message, path, rule, key, node.profile, node.element_id)
    return Issue(severity, code or kind.code, kind.shown, message, path, rule, key, None, element)


# -- cardinality, choice types, slices: worded here, tested by the generated code ---------------------

def too_few(out: Out, node: Node, count: int, path: str) -> None:
    out.append(issue("min", f"{node.name}: minimum required = {node.min}, but only found {count}", path, node))


def too_many(out: Out, node: Node, count: int, path: str) -> None:
    out.append(issue("max", f"{node.name}: max allowed = {node.max}, but found {count}", path, node))


def wrong_choice_type(out: Out, node: Node, key: str, path: str) -> None:
    out.append(issue("type", f"{node.choice_base}[x] must be of type {' or '.join(node.types)}, found {key}", path, node))


def unsliced(out: Out, node: Node, path: str) -> None:
    """An item in no slice of a closed slicing."""
    out.append(issue("slice", f"this element does not match any defined slice of {node.name} (slicing is closed)",
                     path, node))


def slice_limits(out: Out, node: Node, counts: list[int], where: str) -> None:
    """Each slice's cardinality, given how many items each slice has."""
    for item_slice, found in zip(node.slices, counts, strict=True):
        low, high = item_slice.node.min, item_slice.node.max
        if low is not None and found < low:
            out.append(issue("slice", f"{node.name}:{item_slice.name}: minimum required = {low}, but only found {found}",
                             where, item_slice.node, code="required"))
        if high is not None and found > high:
            out.append(issue("slice", f"{node.name}:{item_slice.name}: max allowed = {high}, but found {found}",
                             where, item_slice.node))


_TYPE_NAMES = ("Reference", "CodeableConcept", "Quantity", "Period", "Range", "Ratio", "SampledData", "Attachment",
               "Coding", "Timing", "Duration", "Identifier", "Age", "Money")


def type_suffix(key: str, base: str) -> str:
    """The type a choice key names, as a profile lists it: ``valueQuantity`` -> ``Quantity``."""
    suffix = key[len(base):]
    return suffix if suffix in _TYPE_NAMES else suffix[:1].lower() + suffix[1:]


# -- the rules on one value ------------------------------------------------------------------------

Accepts = Callable[[Any, dict[str, Any]], bool]  # (value, resource) -> whether the rule holds
Report = Callable[[Any, str, Out], None]  # (value, path, issues): says how the rule is broken


@dataclass(frozen=True)
class Rule:
    """One rule on a value: whether it holds, and the issue when it does not. ``kind`` is its
    name in KINDS; ``fixed`` is the value a fixed[x] rule wants (compared inline)."""

    kind: str
    accepts: Accepts
    report: Report
    fixed: Any = None


def rules_of(node: Node) -> list[Rule]:
    """fixed, pattern, reference targets, binding and invariants of one value."""
    found: list[Rule] = []
    if node.fixed is not None:
        found.append(_fixed_rule(node))
    if node.pattern_check is not None:
        found.append(_pattern_rule(node))
    if node.target_types:
        found.append(_target_rule(node))
    if node.binding is not None and node.binding.strength in ("required", "extensible"):
        found.append(_binding_rule(node, node.binding))
    for invariant in node.invariants:
        found.append(_invariant_rule(node, invariant))
    return found


def _fixed_rule(node: Node) -> Rule:
    fixed = node.fixed
    message = f"value must be exactly {json.dumps(fixed)}"
    return Rule("fixed", lambda item, resource: item == fixed,
                lambda item, path, out: out.append(issue("fixed", message, path, node)), fixed)


def _pattern_rule(node: Node) -> Rule:
    predicate = node.pattern_check
    message = f"value must match the pattern {json.dumps(node.pattern)}"
    return Rule("pattern", lambda item, resource: bool(predicate(item)),
                lambda item, path, out: out.append(issue("pattern", message, path, node)))


def _referenced_type(item: Any) -> str | None:
    """The resource type a relative literal reference (``Patient/123``) points to."""
    reference = item.get("reference") if type(item) is dict else None
    if isinstance(reference, str) and "/" in reference and not reference.startswith(("urn:", "#", "http")):
        return reference.split("/")[-2]
    return None


def _target_rule(node: Node) -> Rule:
    targets = node.target_types

    def accepts(item: Any, resource: dict[str, Any]) -> bool:
        target = _referenced_type(item)
        return target is None or target in targets

    def report(item: Any, path: str, out: Out) -> None:
        out.append(issue("reference", f"reference to {_referenced_type(item)} is not allowed here "
                                      f"(allowed: {', '.join(targets)})", f"{path}.reference", node))
    return Rule("reference", accepts, report)


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


def _binding_rule(node: Node, binding: Binding) -> Rule:
    known = binding.codes
    known_codes = frozenset(code for _, code in known)
    severity = "error" if binding.strength == "required" else "warning"

    def accepts(item: Any, resource: dict[str, Any]) -> bool:
        return any((system, code) in known or (system is None and code in known_codes) for system, code in codings(item))

    def report(item: Any, path: str, out: Out) -> None:
        shown = ", ".join(f"{s}|{c}" if s else str(c) for s, c in codings(item)) or "no code"
        out.append(issue("binding", f"{shown} is not in the value set {binding.value_set} ({binding.strength})",
                         path, node, severity=severity))
    return Rule("binding", accepts, report)


def _invariant_rule(node: Node, invariant: Invariant) -> Rule:
    compiled = invariant.check
    message = f"{invariant.key}: {invariant.human} ({invariant.expression})"
    severity, key = invariant.severity, invariant.key
    return Rule("invariant", lambda item, resource: holds(compiled, item, resource),
                lambda item, path, out: out.append(issue("invariant", message, path, node, severity=severity, key=key)))


# -- slices: how an item finds its slice -------------------------------------------------------------

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


def extension_roots(node: Node, lookup: ProfileLookup) -> list[Node]:
    """The root elements of the extension definitions a slice follows (those that are known)."""
    return [found.root for found in (lookup(url) for url in node.type_profiles) if found is not None]
