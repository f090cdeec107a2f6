"""The generated checks of one validator: their namespace (the report helpers and the constants
the source names) and the one place their source is compiled and run. The source of each batch is
registered with ``linecache`` under its own file name, so a traceback shows the generated lines,
and all of it can be read back (``dump``).

    program = Program(profiles.get, code_systems, codings)
    check = program.root("Observation", profile)   # written on first use, then kept
    check(resource, "Observation", context, out, resource)
"""

from __future__ import annotations

import linecache
import threading
from collections.abc import Callable
from typing import Any

from fhir_migraine.validation import rules, structure
from fhir_migraine.validation.issues import Issue, path_text
from fhir_migraine.validation.object_writer import ObjectWriter
from fhir_migraine.validation.profile_tree import Profile
from fhir_migraine.validation.profile_writer import ProfileWriter
from fhir_migraine.validation.source import Pending, ProfileLookup, Source, root_name

# (object, location, Context, issues, resource): the check of one object of a type.
ObjectCheck = Callable[[Any, Any, structure.Context, list[Issue], dict[str, Any]], None]
# (value, location as text, resource, issues): a profile's rules and elements on one value.
ItemCheck = Callable[[Any, str, dict[str, Any], list[Issue]], None]

# What the generated source calls besides its own functions and constants: helpers that word a
# problem (rules.py, structure.py) and the two that read a location or a nested resource.
HELPERS: dict[str, Any] = {
    "path_text": path_text,
    "too_few": rules.too_few, "too_many": rules.too_many, "wrong_choice_type": rules.wrong_choice_type,
    "unsliced": rules.unsliced, "slice_limits": rules.slice_limits, "type_suffix": rules.type_suffix,
    "missing": structure.missing, "empty_object": structure.empty_object, "not_object": structure.not_object,
    "not_array": structure.not_array, "empty_array": structure.empty_array, "an_array": structure.an_array,
    "bad_primitive": structure.bad_primitive, "unknown_element": structure.unknown_element,
    "choice_count": structure.choice_count, "real_day": structure.real_day,
}


def resource_item(value: Any, path: str, context: structure.Context, out: list[Issue]) -> None:
    """A resource inside another (contained, a Bundle entry's): checked by the Context's own
    check of a resource, once it is one of a known type."""
    if not structure.not_resource(out, value, path) and context.on_resource is not None:
        out.extend(context.on_resource(value, path))


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
        self.source = Source(lookup, code_systems, _valid_codings(codings))
        self.namespace: dict[str, Any] = {
            **HELPERS, "resource_item": resource_item,
            "CODE_SYSTEMS": code_systems, "KNOWN_CODINGS": self.source.known_codings,
        }
        self.batches: list[str] = []  # every batch of source run so far, in order
        self._roots: dict[tuple[str, str], ObjectCheck] = {}
        self._lock = threading.RLock()

    def root(self, type_name: str, profile: Profile | None) -> ObjectCheck:
        """The check of a whole resource of ``type_name`` against ``profile`` (or the base spec):
        the rules on the resource itself, then its elements."""
        key = (type_name, profile.url if profile is not None else "")
        found = self._roots.get(key)
        if found is None:
            with self._lock:
                found = self._roots.get(key)
                if found is not None:
                    return found
                if profile is None:
                    found = self._function(self.source.check(type_name, ()))
                else:
                    found = self._function(self._root_name(type_name, profile))
                self._roots[key] = found
        return found

    def item(self, profile: Profile) -> ItemCheck:
        """A profile's rules and elements on a resource, alone (a second profile it declares)."""
        with self._lock:
            return self._function(self.source.item(profile.root))  # type: ignore[return-value]

    def _root_name(self, type_name: str, profile: Profile) -> str:
        """A root check, written here: the root's rules are checked by no caller."""
        body = self.source.check(type_name, (profile.root,))
        name = root_name(type_name, profile.url)
        writer = ObjectWriter(self.source, name, type_name, ())
        writer.lines = [f"def {name}(v, p, c, out, r):"]
        for line in writer.rules((profile.root,), "v", "path_text(p)"):
            writer.emit(1, line)
        writer.emit(1, f"{body}(v, p, c, out, r)")
        self._run(writer.lines)
        return name

    def _function(self, name: str) -> Callable[..., None]:
        self._run([])
        return self.namespace[name]  # type: ignore[no-any-return]

    def _run(self, lines: list[str]) -> None:
        """Writes every function named and not yet written, and runs that source with ``lines``."""
        while self.source.pending:
            lines = self._write(self.source.pending.pop()) + lines
        if not lines:
            return
        text = "\n".join(lines) + "\n"
        filename = f"<fhir-migraine checks {len(self.batches) + 1}>"
        self.namespace.update(self.source.constants)
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        self.batches.append(text)
        exec(compile(text, filename, "exec"), self.namespace)  # noqa: S102 - source written by object_writer.py and profile_writer.py

    def _write(self, pending: Pending) -> list[str]:
        if pending.what == "check":
            return ObjectWriter(self.source, pending.name, pending.type_name, pending.nodes, pending.implied).function()
        writer = ProfileWriter(self.source, pending.name, pending.nodes[0])
        return writer.walk() if pending.what == "walk" else writer.item()

    def dump(self) -> str:
        """All source written so far, batch after batch."""
        return "".join(f"# {filename}\n{text}\n" for filename, text in
                       ((f"<fhir-migraine checks {i}>", t) for i, t in enumerate(self.batches, 1)))
