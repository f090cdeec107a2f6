"""The layers of docs/architecture.md, read from the source: every import of a project module,
at the top of a file, inside a function or under ``TYPE_CHECKING``, goes where its layer may go,
and no module reaches itself again through its imports (no import cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fhir_migraine

PACKAGE = Path(fhir_migraine.__file__).resolve().parent

# What each part of the package may import from the package (besides itself). The core does no
# I/O and knows nothing of configuration, storage, the EHR or the web; the edges compose it.
CORE = ("errors", "documents", "terminology", "identifiers", "shipped", "inputs", "mapping", "validation", "operations",
        "clinical", "report", "cds")
ALLOWED: dict[str, tuple[str, ...]] = {
    **{part: CORE for part in CORE},
    "clinical": ("errors", "terminology"),  # the clinical rules stand on their own: plain records in, results out
    "": (),  # the package's __init__: its version only
    "logs": (),
    "metrics": (),  # the Prometheus instruments: imported by the edges, imports nothing of the package
    "store": ("errors", "postgres"),
    "postgres": ("errors",),  # the PostgreSQL side of the store; reads its migrations as package data
    "migrations": (),  # numbered SQL files only
    "config": (*CORE,),
    "library": (*CORE, "store"),
    "profiles": (*CORE, "library"),
    "ehr": (*CORE, "config", "store", "logs", "metrics"),
    "api": (*CORE, "config", "store", "logs", "metrics", "library", "ehr"),
    # The CLI never loads the web layer for its own work; only `serve` starts it (api.server).
    "cli": (*CORE, "config", "store", "logs", "metrics", "library", "ehr", "profiles", "api.server"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The project modules ``name`` imports, wherever the import statement stands."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                stem = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*stem, *([node.module] if node.module else [])])
            for alias in node.names:
                # `from fhir_migraine.validation import structure` imports the module structure;
                # `from fhir_migraine.validation import check` imports the package's __init__.
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def part_of(name: str) -> str:
    rest = name.removeprefix("fhir_migraine").removeprefix(".")
    return rest.split(".")[0]


def allowed(importer: str, imported: str) -> bool:
    part, target = part_of(importer), imported.removeprefix("fhir_migraine.")
    if part_of(imported) == part or imported == "fhir_migraine":
        return True
    return any(target == rule or target.startswith(f"{rule}.") for rule in ALLOWED[part])


def test_every_part_of_the_package_has_a_layer() -> None:
    assert {part_of(name) for name in MODULES} <= set(ALLOWED)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_module_imports_only_what_its_layer_may(name: str) -> None:
    wrong = sorted(m for m in GRAPH[name] if not allowed(name, m))
    assert not wrong, f"{name} ({part_of(name) or 'the package'}) may not import {wrong}; see docs/architecture.md"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_docs_architecture_names_every_part_of_the_package() -> None:
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`").removesuffix(".py").removesuffix("/")
            for line in text.splitlines() if line.startswith("| `")}
    assert {part for part in ALLOWED if part} <= rows
