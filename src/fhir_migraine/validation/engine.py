"""The validator: the base R4 structure, then every profile a resource declares (or is given),
then references inside a Bundle and the codes of the project's CodeSystems.

    validator = Validator.load()            # reads the shipped FHIR package once and compiles it
    outcome = validator.validate(resource)  # an OperationOutcome; pure, no I/O
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_migraine import shipped, terminology
from fhir_migraine.validation import structure
from fhir_migraine.validation.issues import Issue, outcome, path_text, ranked
from fhir_migraine.validation.narrative import narrative_issues
from fhir_migraine.validation.profile_tree import Profile, compile_profile
from fhir_migraine.validation.program import ItemCheck, ObjectCheck, Program
from fhir_migraine.validation.rules import issue

PROJECT_BASE = terminology.CANONICAL_BASE


_DOM_3 = ("dom-3: If the resource is contained in another resource, it SHALL be referred to from elsewhere in "
          "the resource or SHALL refer to the containing resource")


def _reference_issues(references: list[tuple[Any, str]], local: set[str], bundle: dict[str, str] | None) -> list[Issue]:
    """Local references that name no contained resource (``local``: the "#id"s of the resource
    and of its container), and urn:uuid references that name no entry of the Bundle."""
    found = []
    for at, reference in references:
        if reference[:1] == "#":
            if reference not in local and reference != "#":
                found.append(issue("reference", f"contained resource {reference} not found", path_text(at),
                                   element="Reference.reference"))
        elif reference.startswith("urn:uuid:") and bundle is not None and reference not in bundle:
            found.append(issue("reference", f"{reference} is not an entry of this Bundle", path_text(at),
                               element="Reference.reference"))
    return found


def _contained_issues(contained: list[Any], path: str, pointed: set[str], inside: dict[int, set[str]]) -> list[Issue]:
    """Contained resources with an id an earlier one has, and those the container does not reach."""
    found = _duplicate_ids(contained, path)
    for at in _unreferenced(contained, pointed, inside):
        found.append(issue("invariant", _DOM_3, f"{path}.contained[{at}]", key="dom-3", element="DomainResource.contained"))
    return found


def _duplicate_ids(contained: list[Any], path: str) -> list[Issue]:
    """An issue for each contained resource whose id an earlier one has (ids are unique in a resource)."""
    seen: set[Any] = set()
    found = []
    for at, item in enumerate(contained):
        name = item.get("id") if type(item) is dict else None
        if type(name) is not str:  # a wrong type of id is the structure walk's to report
            continue
        if name in seen:
            found.append(issue("structure", f"duplicate id {name!r} of a contained resource", f"{path}.contained[{at}]",
                               element="Resource.id"))
        seen.add(name)
    return found


def _unreferenced(contained: list[Any], pointed: set[str], inside: dict[int, set[str]]) -> list[int]:
    """The positions of the contained resources the container does not reach (base invariant
    dom-3): reached are those a "#id" of the container points to (``pointed``: its references,
    canonicals, uris and urls), then those the reached ones point to, and those that point to
    the container ("#"). ``inside``: what each contained resource points to, by its object id."""
    ids = {f"#{item.get('id')}": at for at, item in enumerate(contained) if type(item) is dict}
    reached = {ids[name] for name in pointed if name in ids}
    if len(reached) == len(ids):
        return []
    reached |= {at for at in ids.values() if "#" in inside.get(id(contained[at]), ())}
    frontier = list(reached)
    while frontier:
        for name in inside.get(id(contained[frontier.pop()]), ()):
            at = ids.get(name)
            if at is not None and at not in reached:
                reached.add(at)
                frontier.append(at)
    return sorted(set(ids.values()) - reached)


@dataclass(frozen=True)
class _Plan:
    """How one kind of resource with one list of profiles is checked: the walk (base structure
    and the first profile), the other profiles, and the issues about profiles themselves
    (unknown, or for another type) as (severity, code, message)."""

    walk: ObjectCheck
    extra: tuple[ItemCheck, ...]
    problems: tuple[tuple[str, str, str], ...]


@dataclass
class Validator:
    """The project's profiles, compiled."""

    profiles: dict[str, Profile]
    code_systems: dict[str, frozenset[str]]
    # Codings the package lists (system, code, display): a Coding that is one of them, and
    # nothing else, is valid as it stands (the generated checks tell it by one look-up).
    known_codings: frozenset[tuple[Any, Any, Any]] = frozenset()

    def __post_init__(self) -> None:
        # The generated checks (program.py): the base structure and the first profile in one pass.
        self.program = Program(self.profiles.get, frozenset(self.code_systems), self.known_codings)
        self._plans: dict[tuple[str, tuple[Any, ...], tuple[Any, ...]], _Plan] = {}

    @classmethod
    def load(cls, folder: Path | None = None) -> Validator:
        """The validator of the FHIR package shipped inside fhir_migraine, or of a package folder."""
        definitions, value_sets, code_systems = [], {}, {}
        codings: set[tuple[Any, Any, Any]] = set()  # (system, code, display) the package lists
        for resource in shipped.conformance_resources(folder):
            kind = resource.get("resourceType")
            if kind == "StructureDefinition":
                definitions.append(resource)
            elif kind == "ValueSet":
                contains = resource.get("expansion", {}).get("contains", [])
                value_sets[resource["url"]] = frozenset((c.get("system"), c["code"]) for c in contains)
                codings.update((c.get("system"), c["code"], c.get("display")) for c in contains)
            elif kind == "CodeSystem":
                concepts = resource.get("concept", [])
                code_systems[resource["url"]] = frozenset(c["code"] for c in concepts)
                codings.update((resource["url"], c["code"], c.get("display")) for c in concepts)
        profiles = {d["url"]: compile_profile(d, value_sets) for d in definitions}
        codings.update(terminology.codings())  # the project's own code tables: what mappings write
        return cls(profiles, code_systems, frozenset(codings))

    def validate(self, resource: Any, *, profile: str | None = None) -> dict[str, Any]:
        """The OperationOutcome of a resource or a Bundle (each entry with its own profiles)."""
        return outcome(self.issues(resource, profile=profile))

    def issues(self, resource: Any, *, profile: str | None = None) -> list[Issue]:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            return [issue("structure", "not a FHIR resource (no resourceType)", "$", severity="fatal", element="Resource")]
        kind = resource["resourceType"]
        if structure.definition(kind) is None:
            return [issue("structure", f"unknown resourceType {kind!r}", kind, severity="fatal", element="Resource")]
        return ranked(self._resource(resource, kind, [profile] if profile else None, bundle=None))

    # -- one resource ------------------------------------------------------------------------

    def _resource(self, resource: dict[str, Any], path: str, profiles: list[str] | None,
                  bundle: dict[str, str] | None, container: set[str] | None = None,
                  sink: set[str] | None = None) -> list[Issue]:
        kind = resource["resourceType"]
        if kind == "Bundle":
            return self._bundle(resource, path)
        found_contained = resource.get("contained")
        contained_list: list[Any] = found_contained if type(found_contained) is list else []
        local = {f"#{c.get('id')}" for c in contained_list if type(c) is dict}  # what "#id" can name here
        inside: dict[int, set[str]] = {}  # what each contained resource points to, by object id

        def nested(child: dict[str, Any], child_path: str) -> list[Issue]:
            return self._resource(child, child_path, None, bundle, local, inside.setdefault(id(child), set()))

        references: list[tuple[Any, str]] = []
        codings: list[tuple[Any, str, str]] = []
        # Local pointers ("#...") are gathered where dom-3 needs them: in a resource with contained
        # resources, and in each contained one (``sink``, its container's record of it).
        pointers: list[str] | None = [] if local or sink is not None else None
        context = structure.Context(nested, references, codings, pointers)
        meta = resource.get("meta")
        plan = self._plan(kind, profiles, meta.get("profile") if type(meta) is dict else None)
        out: list[Issue] = []
        plan.walk(resource, path, context, out, resource)
        for severity, code, message in plan.problems:
            out.append(issue("structure", message, path, severity=severity, code=code, element=kind))
        for check in plan.extra:
            check(resource, path, resource, out)
        if "text" in resource:
            out.extend(narrative_issues(resource["text"], f"{path_text(path)}.text"))
        out.extend(_reference_issues(references, local | (container or set()), bundle))
        out.extend(self._code_issues(codings))
        if pointers is not None:
            pointed = {reference for _, reference in references if reference[:1] == "#"}
            pointed.update(pointers)
            if sink is not None:
                sink.update(pointed)
            if local:
                out.extend(_contained_issues(contained_list, path, pointed, inside))
        return out

    def _code_issues(self, codings: list[tuple[Any, str, str]]) -> list[Issue]:
        """Codings of the project's CodeSystems whose code is not one of them."""
        found = []
        for at, system, code in codings:
            codes = self.code_systems.get(system)
            if codes is not None and code not in codes:
                found.append(issue("code", f"unknown code {code!r} in the CodeSystem {system}", path_text(at),
                                   element="Coding.code"))
        return found

    def _plan(self, kind: str, profiles: list[str] | None, declared: Any) -> _Plan:
        """How a resource of ``kind`` asked to meet ``profiles`` and declaring ``declared`` is
        checked; worked out once for each such combination (a bounded number are kept)."""
        try:
            key = (kind, tuple(profiles or ()), tuple(declared) if type(declared) is list else ())
            found = self._plans.get(key)
        except TypeError:  # something unhashable among the declared profiles
            key, found = None, None
        if found is None:
            found = self._make_plan(kind, profiles, declared)
            if key is not None and len(self._plans) < 1024:
                self._plans[key] = found
        return found

    def _make_plan(self, kind: str, profiles: list[str] | None, declared: Any) -> _Plan:
        # A profile asked for is checked as well as those the resource declares (as HAPI does).
        listed = [url for url in (declared if type(declared) is list else ()) if type(url) is str]
        applying, problems = [], []
        for url in dict.fromkeys([*(profiles or ()), *listed]):
            compiled = self.profiles.get(url.split("|")[0])
            if compiled is None:
                severity = "error" if url.startswith(PROJECT_BASE) else "warning"
                problems.append((severity, "not-found", f"profile {url} is not known"))
            elif compiled.type != kind:
                problems.append(("error", "structure", f"profile {url} is for {compiled.type}, not {kind}"))
            else:
                applying.append(compiled)
        walk = self.program.root(kind, applying[0] if applying else None)
        return _Plan(walk, tuple(self.program.item(compiled) for compiled in applying[1:]), tuple(problems))

    def _bundle(self, bundle: dict[str, Any], path: str) -> list[Issue]:
        entries = bundle.get("entry", [])
        if not isinstance(entries, list):
            return self._base(bundle, path)
        out = self._base({k: v for k, v in bundle.items() if k != "entry"}, path)
        urls = {}
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                urls[entry.get("fullUrl", "")] = entry["resource"].get("resourceType", "")
        for i, entry in enumerate(entries):
            entry_path = f"{path}.entry[{i}]"
            if not isinstance(entry, dict):
                out.append(issue("structure", "must be an object (BundleEntry)", entry_path, element="BundleEntry"))
                continue
            out.extend(self._base({k: v for k, v in entry.items() if k != "resource"}, entry_path, "BundleEntry"))
            resource = entry.get("resource")
            if resource is None:
                continue
            if not isinstance(resource, dict) or structure.definition(str(resource.get("resourceType"))) is None:
                out.append(issue("structure", "must be a resource with a known resourceType", f"{entry_path}.resource",
                                 element="Bundle.entry.resource"))
                continue
            out.extend(self._resource(resource, f"{entry_path}.resource", None, urls))
        return out

    def _base(self, value: dict[str, Any], path: str, type_name: str | None = None) -> list[Issue]:
        """Base-structure issues of a part of a Bundle (``type_name``: what it is read as, the
        resource's own type by default), resources inside it checked the same way."""
        out: list[Issue] = []
        check = self.program.root(type_name or value["resourceType"], None)
        check(value, path, structure.Context(self._base), out, value)
        return out

    def generated_source(self, resources: Iterable[Any] = ()) -> str:
        """The source of the generated checks: of every profile's resource (and of a profile
        declared second), and whatever validating ``resources`` needs besides."""
        for profile in self.profiles.values():
            self.program.root(profile.type, profile)
            self.program.item(profile)
        for resource in resources:
            self.issues(resource)
        return self.program.dump()
