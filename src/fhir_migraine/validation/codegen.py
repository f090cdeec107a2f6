"""One pass over a resource that checks its base structure and its profile's rules together: for
each type, under the profile elements that apply to it, the checks are written out as Python
once, compiled with ``exec``, and reused for every resource.

The generated code handles the shapes a valid resource has: objects whose keys are known elements
and none is null, an array where an element repeats and a single value where it does not, at most
one type of a choice ``[x]``, items that find their slice. Anything else goes to the closures of
``structure`` (base spec) and ``rules`` (profiles), which work out and word what is wrong; so
both ways give the same issues (a test compares them), and the common case costs no function
call per primitive, no look-up of rules and no second walk for the profile.

    program = Program(profiles.get, code_systems)
    check = program.root("Observation", profile)   # written on first use, then kept
    check(resource, "Observation", context, out)
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from fhir_migraine.validation import structure
from fhir_migraine.validation.compile import Node, Profile
from fhir_migraine.validation.issues import Issue
from fhir_migraine.validation.rules import ProfileLookup, item_rules, too_few, too_many, unsliced, wrong_choice_type
from fhir_migraine.validation.writer import Nodes, ObjectCheck, Writer

RootCheck = Callable[[dict[str, Any], str, structure.Context, list[Issue]], None]


def path_text(path: Any) -> str:
    """A location as FHIRPath text. The generated checks carry a location as it is built, a
    pair (parent, step) with a step such as ``.code`` or an index, and write it out only when an
    issue needs it: ``(("Observation", ".component"), 2)`` is ``Observation.component[2]``."""
    if type(path) is str:
        return path
    steps = []
    while type(path) is tuple:
        path, step = path
        steps.append(step if type(step) is str else f"[{step}]")
    steps.append(path)
    return "".join(reversed(steps))


def _valid_codings(codings: frozenset[tuple[Any, Any, Any]]) -> frozenset[tuple[Any, ...]]:
    """Of (system, code, display) triples, those whose parts are valid uri, code and string, and
    each (system, code) pair: a Coding object holding exactly one of these is valid as it stands."""
    uri, code, string = (structure.FAST[name] for name in ("uri", "code", "string"))
    pairs = {(system, value) for system, value, _ in codings if uri(system) and code(value)}
    return frozenset(pairs | {(system, value, display) for system, value, display in codings
                              if (system, value) in pairs and display is not None and string(display)})


class Program:
    """The generated checks, written on demand and kept for the life of the validator."""

    def __init__(self, lookup: ProfileLookup, code_systems: frozenset[str] = frozenset(),
                 codings: frozenset[tuple[Any, Any, Any]] = frozenset()) -> None:
        self.lookup = lookup
        self.code_systems = code_systems  # the systems whose codings are gathered for checking
        self.known_codings = _valid_codings(codings)
        self.namespace: dict[str, Any] = {
            "too_few": too_few, "too_many": too_many, "wrong_choice_type": wrong_choice_type,
            "unsliced": unsliced, "missing": structure.missing,
            "check_resource_item": lambda v, p, c, out, r: structure.check_resource(v, path_text(p), c, out),
            "path_text": path_text,
            "real_day": structure.real_day, "empty_object": structure.empty_object,
        }
        self._names: dict[tuple[str, tuple[int, ...]], str] = {}
        self._kept: list[Nodes] = []  # the nodes of every specialised check, so their ids stay theirs
        self._pending: list[tuple[str, str, Nodes]] = []
        self._roots: dict[tuple[str, str], RootCheck] = {}
        # Nodes whose fixed or pattern rule holds for every value their check sees: the element
        # that told an item's slice apart (by a look-up of that very value), by node id.
        self.implied: dict[int, str] = {}
        self._lock = threading.Lock()

    def root(self, type_name: str, profile: Profile | None) -> RootCheck:
        """The check of a whole resource of ``type_name`` against ``profile`` (or the base spec)."""
        key = (type_name, profile.url if profile is not None else "")
        found = self._roots.get(key)
        if found is None:
            with self._lock:
                found = self._roots.get(key) or self._make_root(type_name, profile)
                self._roots[key] = found
        return found

    def _make_root(self, type_name: str, profile: Profile | None) -> RootCheck:
        nodes = (profile.root,) if profile is not None else ()
        body = self.check(type_name, nodes)
        rules = item_rules(profile.root) if profile is not None else None

        def check(resource: dict[str, Any], path: str, context: structure.Context, out: list[Issue]) -> None:
            if rules is not None:
                rules(resource, path, resource, out)
            body(resource, path, context, out, resource)
        return check

    def check(self, type_name: str, nodes: Nodes) -> ObjectCheck:
        """The check of ``type_name`` objects under ``nodes``, written now if it is new."""
        name = self.function(type_name, nodes)
        source: list[str] = []
        while self._pending:
            pending = self._pending.pop()
            source.extend(Writer(self, pending[1], pending[2]).function(pending[0]))
        if source:
            exec(compile("\n".join(source) + "\n", "<fhir-migraine checks>", "exec"), self.namespace)  # noqa: S102
        return self.namespace[name]  # type: ignore[no-any-return]

    def function(self, type_name: str, nodes: Nodes) -> str:
        """The name of the check of ``type_name`` objects under ``nodes`` (queued if new); only
        nodes with children matter here, their own rules are checked by the caller."""
        nodes = tuple(n for n in nodes if n.child_list)
        key = (type_name, tuple(id(n) for n in nodes))
        name = self._names.get(key)
        if name is None:
            name = f"check_{len(self._names)}_{type_name}"
            self._names[key] = name
            self._kept.append(nodes)
            self._pending.append((name, type_name, nodes))
        return name

    def constant(self, value: Any, hint: str) -> str:
        name = f"{hint}_{len(self.namespace)}"
        self.namespace[name] = value
        return name
