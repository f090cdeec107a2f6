"""The bookkeeping of the generated checks: each function's readable name (from its type and the
profile elements it checks), the constants its source refers to, and the queue of functions
named but not written yet. A function's name and text depend only on what it checks, never on
which functions were written before it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fhir_migraine.validation.profile_tree import Node, Profile
from fhir_migraine.validation.rules import rules_of
from fhir_migraine.validation.structure import Element, definition

Nodes = tuple[Node, ...]
Implied = tuple[tuple[int, str], ...]  # (id of a node, the rule kind its check may skip)
ProfileLookup = Callable[[str], "Profile | None"]


def _words(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_")


def _profile_name(url: str) -> str:
    return _words(url.rstrip("/").rsplit("/", 1)[-1])


def root_name(type_name: str, url: str) -> str:
    """The name of the check of a whole resource against the profile at ``url``."""
    return f"validate_{type_name}__{_profile_name(url)}"


def _element_name(node: Node) -> str:
    """``Observation.component:severity.value[x]`` -> ``component_severity_value_x``."""
    _, _, below = node.element_id.partition(".")
    return _words(below.replace(":", "_").replace("[x]", "_x"))


def nodes_name(nodes: Nodes) -> str:
    """The profile elements of a check, readably: ``diary_day__component__component_severity``."""
    parts: list[str] = []
    profile = None
    for node in nodes:
        if node.profile != profile:
            profile = node.profile
            parts.append(_profile_name(profile))
        parts.append(_element_name(node) or "root")
    return "__".join(parts)


@dataclass
class Pending:
    """A function named and still to write: ``what`` is "check" (an object of ``type_name`` under
    ``nodes``), "walk" (profile element ``nodes[0]`` in a parent) or "item" (the rules and
    elements of ``nodes[0]`` on one value)."""

    what: str
    name: str
    type_name: str
    nodes: Nodes
    implied: Implied = ()


@dataclass
class Source:
    """The names, constants and queue of the generated checks of one validator."""

    lookup: ProfileLookup
    code_systems: frozenset[str]
    known_codings: frozenset[tuple[Any, ...]]
    constants: dict[str, Any] = field(default_factory=dict)
    pending: list[Pending] = field(default_factory=list)
    _names: dict[tuple[Any, ...], str] = field(default_factory=dict)
    _taken: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _kept: list[Nodes] = field(default_factory=list)  # every node a name stands for, so ids stay theirs

    def check(self, type_name: str, nodes: Nodes, implied: Implied = ()) -> str:
        """The name of the check of ``type_name`` objects under ``nodes`` (queued if new); only
        nodes with children matter here, their own rules are checked by the caller."""
        nodes = tuple(n for n in nodes if n.child_list)
        wanted = f"check_{type_name}__{nodes_name(nodes)}" if nodes else f"check_{type_name}"
        return self._name(Pending("check", wanted, type_name, nodes, implied))

    def walk(self, node: Node) -> str:
        """The name of the check of profile element ``node`` in a parent object."""
        return self._name(Pending("walk", f"walk_{nodes_name((node,))}", "", (node,)))

    def item(self, node: Node) -> str:
        """The name of the check of ``node``'s rules and elements on one value."""
        return self._name(Pending("item", f"item_{nodes_name((node,))}", "", (node,)))

    def _name(self, wanted: Pending) -> str:
        key = (wanted.what, wanted.type_name, tuple(id(n) for n in wanted.nodes), wanted.implied)
        name = self._names.get(key)
        if name is not None:
            return name
        name = wanted.name
        if name in self._taken and self._taken[name] != key:
            # Two checks whose elements read alike (slice names differing in punctuation).
            ids = [(n.profile, n.element_id) for n in wanted.nodes]
            name += "_" + hashlib.sha1(repr((wanted.what, wanted.type_name, ids, wanted.implied)).encode()).hexdigest()[:8]
        self._names[key] = name
        self._taken[name] = key
        self._kept.append(wanted.nodes)
        wanted.name = name
        self.pending.append(wanted)
        return name


class FunctionWriter:
    """Writes the source of one generated function: lines, and constants named after it."""

    def __init__(self, source: Source, name: str) -> None:
        self.source = source
        self.name = name
        self.lines: list[str] = []
        self.shift = 0  # extra indentation of what emit() writes
        self._count = 0

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * (depth + self.shift) + line)

    def const(self, value: Any, hint: str) -> str:
        self._count += 1
        name = f"{self.name}__{hint}_{self._count}"
        self.source.constants[name] = value
        return name

    def rules(self, nodes: Nodes, value: str, at: str, implied: Implied = ()) -> list[str]:
        """The rules of ``nodes`` on ``value``, each a test that calls its report when broken
        (``at``, an expression of the path as text, is only worked out then); a rule the caller
        knows holds (``implied``) is left out."""
        skip = dict(implied)
        lines = []
        for node in nodes:
            for rule in rules_of(node):
                if skip.get(id(node)) == rule.kind:
                    continue
                report = self.const(rule.report, f"report_{rule.kind}")
                if rule.fixed is not None:
                    lines.append(f"if {value} != {self.const(rule.fixed, 'fixed')}:")
                else:
                    lines.append(f"if not {self.const(rule.accepts, rule.kind)}({value}, r):")
                lines.append(f"    {report}({value}, {at}, out)")
        return lines


def implied_by_slice(element: Element, sliced: Node, position: int) -> Implied:
    """An item of ``element`` that found slice ``position`` by an index of the one value at the
    discriminator path (a single element of the item): that value meets the slice's fixed or
    pattern rule there, which the item's check need not test again."""
    at = sliced.slice_path
    item_type = definition(element.fhir_type)
    if sliced.slice_index is None or at is None or item_type is None:
        return ()
    discriminating = item_type.elements.get(at)
    target = sliced.slices[position].node.children.get(at)
    if discriminating is None or discriminating.repeats or target is None:
        return ()
    if target.fixed is None:
        return ((id(target), "pattern"),)  # one coding (system, code) or a value
    if isinstance(target.fixed, (str, int, bool)):
        # A fixed value is implied only when it is that one value: a fixed CodeableConcept
        # also wants nothing besides its coding, which the index does not look at.
        return ((id(target), "fixed"),)
    return ()
