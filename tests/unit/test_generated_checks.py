"""The generated checks: readable source that compiles on its own, one place that runs it,
tracebacks that show its lines, no import cycle in the validation package, and issues that say
which rule of which profile element found them."""

from __future__ import annotations

import ast
import io
import re
import traceback
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine import cli
from fhir_migraine.validation import default_validator, profile_tree
from fhir_migraine.validation.engine import Validator
from fhir_migraine.validation.issues import PROVENANCE_URL
from tests.validation_corpus import CANONICAL_BASE, cases

SRC = Path(__file__).resolve().parents[2] / "src" / "fhir_migraine"
VALIDATOR = Validator.load()


def test_the_dump_compiles_and_names_functions_by_type_and_profile_element() -> None:
    source = VALIDATOR.generated_source(case.resource for case in cases())
    tree = ast.parse(source)
    names = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert "check_Observation__diary_day__root" in names
    assert "validate_Observation__diary_day" in names
    assert "check_ObservationComponent__diary_attack__component_peakIntensity" in names
    assert "check_Bundle" in names
    assert not [name for name in names if re.search(r"_\d+_", name)], "no numbered function names"


def test_every_profile_has_a_root_check_in_the_dump() -> None:
    source = Validator.load().generated_source()
    for profile in VALIDATOR.profiles.values():
        assert f"def validate_{profile.type}__{profile.url.rsplit('/', 1)[-1].replace('-', '_')}(" in source


def test_what_a_function_holds_does_not_depend_on_what_was_written_before() -> None:
    first, second = Validator.load(), Validator.load()
    corpus = cases()
    first.generated_source(case.resource for case in corpus)
    second.generated_source(case.resource for case in reversed(corpus))

    def functions(validator: Validator) -> dict[str, str]:
        tree = ast.parse(validator.program.dump())
        return {node.name: ast.unparse(node) for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert functions(first) == functions(second)


def test_the_cli_prints_the_generated_checks() -> None:
    out = io.StringIO()
    assert cli.main(["profiles", "dump-checks"], out=out) == 0
    ast.parse(out.getvalue())
    assert "def check_MedicationRequest__migraine_infusion_request__root(" in out.getvalue()


def test_a_failure_inside_generated_code_shows_the_generated_line(monkeypatch: pytest.MonkeyPatch) -> None:
    validator = Validator.load()
    validator.issues({"resourceType": "Observation", "status": "final", "code": {"text": "x"}})

    def broken(*args: Any) -> None:
        raise RuntimeError("inside a generated check")
    monkeypatch.setitem(validator.program.namespace, "empty_object", broken)
    with pytest.raises(RuntimeError) as raised:
        validator.issues({"resourceType": "Observation", "status": "final", "code": {}})
    shown = "".join(traceback.format_exception(raised.value))
    assert 'File "<fhir-migraine checks' in shown
    assert "empty_object(path_text(p), out)" in shown


def test_exec_is_called_in_one_place_only() -> None:
    calls = [f"{path.name}:{node.lineno}" for path in SRC.rglob("*.py")
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "exec"]
    assert calls == [c for c in calls if c.startswith("program.py:")] and len(calls) == 1, calls


def test_the_validation_package_has_no_import_cycle() -> None:
    package = SRC / "validation"
    imports: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        found = imports.setdefault(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fhir_migraine.validation"):
                module = node.module or ""
                if module == "fhir_migraine.validation":
                    found.update(alias.name for alias in node.names if (package / f"{alias.name}.py").exists())
                else:
                    found.add(module.rsplit(".", 1)[-1])

    def reaches(start: str, seen: tuple[str, ...]) -> None:
        for module in imports.get(start, ()):
            assert module not in seen, f"import cycle: {' -> '.join((*seen, module))}"
            reaches(module, (*seen, module))
    for module in imports:
        reaches(module, (module,))


def _issue_of(resource: dict[str, Any], profile: str | None, expression: str) -> Any:
    found = [i for i in default_validator().issues(resource, profile=profile) if i.expression == expression]
    assert found, default_validator().issues(resource, profile=profile)
    return found[0]


def test_an_issue_names_its_profile_element_and_rule() -> None:
    case = next(c for c in cases() if c.profile_id == "diary-day" and c.expected_valid)
    resource = case.resource
    del resource["identifier"]
    issue = _issue_of(resource, case.profile, "Observation.identifier")
    assert (issue.rule, issue.profile, issue.element) == ("min", CANONICAL_BASE + "diary-day", "Observation.identifier")
    assert issue.kind == "cardinality"


def test_a_base_invariant_issue_names_its_key_and_no_profile() -> None:
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "valueString": "a", "dataAbsentReason": {"text": "gone"}}
    issue = _issue_of(resource, None, "Observation")
    assert (issue.rule, issue.key, issue.profile, issue.kind) == ("invariant", "obs-6", None, "invariant")


@pytest.mark.parametrize("case_id, element", [
    ("attack-with-two-peak-intensities", "Observation.component:peakIntensity"),
    ("attack-with-unknown-component", "Observation.component"),
    ("bag-with-two-ordered-doses", "Medication.ingredient.extension:orderedDose"),
    ("bag-with-two-dose-ceilings", "Medication.ingredient.extension:doseCeiling"),
])
def test_a_slice_issue_names_the_sliced_element_or_its_slice(case_id: str, element: str) -> None:
    case = next(c for c in cases() if c.id == case_id)
    found = [(i.rule, i.profile, i.element) for i in default_validator().issues(case.resource, profile=case.profile)
             if i.kind == "slicing"]
    assert found == [("slice", case.canonical, element)]


def test_the_outcome_carries_where_an_issue_came_from() -> None:
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueFoo": 1}
    (issue,) = default_validator().validate(resource)["issue"]
    assert issue["details"] == {"text": "unknown"} and issue["expression"] == ["Observation.valueFoo"]
    (source,) = issue["extension"]
    assert source["url"] == PROVENANCE_URL
    assert {e["url"]: e["valueString"] for e in source["extension"]} == {"rule": "unknown", "element": "Observation"}


def test_a_fixed_codeable_concept_that_picked_a_slice_is_still_checked_whole() -> None:
    """A slice told apart by one coding of a fixed CodeableConcept: the look-up that found the
    slice saw that coding only, so the fixed value (nothing besides it) is checked all the same."""
    definition = {"url": "urn:test:fixed-slice", "type": "Observation", "differential": {"element": [
        {"id": "Observation.component", "path": "Observation.component",
         "slicing": {"discriminator": [{"type": "value", "path": "code"}], "rules": "open"}},
        {"id": "Observation.component:a", "path": "Observation.component", "sliceName": "a", "min": 1, "max": "1"},
        {"id": "Observation.component:a.code", "path": "Observation.component.code",
         "fixedCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "1-8"}]}},
    ]}}
    profiles = {**VALIDATOR.profiles, definition["url"]: profile_tree.compile_profile(definition, {})}
    component = {"code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}, {"system": "urn:x", "code": "y"}]},
                 "valueString": "v"}
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "component": [component]}
    validator = Validator(profiles, VALIDATOR.code_systems, VALIDATOR.known_codings)
    found = [(i.kind, i.expression, i.element) for i in validator.issues(resource, profile=definition["url"])]
    assert found == [("fixed", "Observation.component[0].code", "Observation.component:a.code")]
