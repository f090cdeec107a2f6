"""The validator: the base R4 structure, then every profile a resource declares (or is given),
then references inside a Bundle and the codes of the project's CodeSystems.

    validator = Validator.load()            # reads the shipped FHIR package once and compiles it
    outcome = validator.validate(resource)  # an OperationOutcome; pure, no I/O
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fhir_migraine import shipped, terminology
from fhir_migraine.validation import structure
from fhir_migraine.validation.codegen import Program, path_text
from fhir_migraine.validation.compile import Profile, compile_profile
from fhir_migraine.validation.issues import Issue, outcome, ranked
from fhir_migraine.validation.rules import ItemCheck, compile_root

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
                found.append(Issue("error", "structure", "reference", f"contained resource {reference} not found",
                                   path_text(at)))
        elif reference.startswith("urn:uuid:") and bundle is not None and reference not in bundle:
            found.append(Issue("error", "structure", "reference", f"{reference} is not an entry of this Bundle",
                               path_text(at)))
    return found


def _contained_issues(contained: list[Any], path: str, pointed: set[str], inside: dict[int, set[str]]) -> list[Issue]:
    """Contained resources with an id an earlier one has, and those the container does not reach."""
    found = _duplicate_ids(contained, path)
    for at in _unreferenced(contained, pointed, inside):
        found.append(Issue("error", "invariant", "invariant", _DOM_3, f"{path}.contained[{at}]"))
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
            found.append(Issue("error", "structure", "structure", f"duplicate id {name!r} of a contained resource",
                               f"{path}.contained[{at}]"))
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

    walk: Callable[[dict[str, Any], str, structure.Context, list[Issue]], None]
    extra: tuple[ItemCheck, ...]
    problems: tuple[tuple[str, str, str], ...]


@dataclass
class Validator:
    """The project's profiles, compiled."""

    profiles: dict[str, Profile]
    code_systems: dict[str, frozenset[str]]
    # One generated pass for the structure and the first profile (codegen.py); False walks the
    # structure and then each profile with the closures alone (the reference the tests compare to).
    single_pass: bool = True
    # Codings the package lists (system, code, display): a Coding that is one of them, and
    # nothing else, is valid as it stands (writer.py checks it by one look-up).
    known_codings: frozenset[tuple[Any, Any, Any]] = frozenset()
    checks: dict[str, ItemCheck] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for url, profile in self.profiles.items():
            self.checks[url] = compile_root(profile, self.profiles.get)
        self.program = Program(self.profiles.get, frozenset(self.code_systems), self.known_codings)
        self._plans: dict[tuple[str, tuple[Any, ...], tuple[Any, ...]], _Plan] = {}

    @classmethod
    def load(cls, folder: Path | None = None, *, single_pass: bool = True) -> "Validator":
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
        return cls(profiles, code_systems, single_pass, frozenset(codings))

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
        plan.walk(resource, path, context, out)
        for severity, code, message in plan.problems:
            out.append(Issue(severity, code, "structure", message, path))
        for check in plan.extra:
            check(resource, path, resource, out)
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
                found.append(Issue("error", "code-invalid", "code", f"unknown code {code!r} in the CodeSystem {system}",
                                   path_text(at)))
        return found

    def _plan(self, kind: str, profiles: list[str] | None, declared: Any) -> "_Plan":
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

    def _make_plan(self, kind: str, profiles: list[str] | None, declared: Any) -> "_Plan":
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
        if self.single_pass:
            walk = self.program.root(kind, applying[0] if applying else None)
            applying = applying[1:]
        else:
            walk = structure.checker(kind)
        return _Plan(walk, tuple(self.checks[compiled.url] for compiled in applying), tuple(problems))

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
