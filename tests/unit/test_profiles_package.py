"""The FHIR package in profiles/: generated (never edited by hand), well-formed, self-contained,
and packed the same way every time."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from fhir_migraine import profiles, shipped, terminology
from fhir_migraine.profiles.elements import path_of
from tests.conftest import ROOT
from tests.helpers import run_cli

FOLDER = ROOT / "profiles"


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    return profiles.files(profiles.read_sources(ROOT))


@pytest.fixture(scope="module")
def resources(built: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The conformance resources by canonical URL."""
    found = {}
    for name, text in built.items():
        if "/" not in name and name != "package.json":
            resource = json.loads(text)
            found[resource["url"]] = resource
    return found


def of_type(resources: dict[str, dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources.values() if r["resourceType"] == resource_type]


def on_disk() -> dict[str, str]:
    return {
        p.relative_to(FOLDER).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(FOLDER.rglob("*.json"))
    }


def without_pdf_bytes(text: str) -> str:
    """A file with the bytes of its PDF attachments (the report example's) left out: WeasyPrint's
    output follows the system's font files and font subsetter, so the PDF is compared by what it
    is (tests/unit/test_report.py reads its pages and text), not byte for byte."""
    if '"application/pdf"' not in text:
        return text
    document = json.loads(text)
    for content in document.get("content", []):
        attachment = content.get("attachment", {})
        if attachment.get("contentType") == "application/pdf":
            for key in ("data", "size", "hash"):
                attachment.pop(key, None)
    return json.dumps(document, sort_keys=True)


def test_profiles_folder_is_what_the_build_makes_now(built: dict[str, str]) -> None:
    disk = on_disk()
    assert sorted(disk) == sorted(built), "run 'fhir-migraine profiles build' and commit profiles/"
    changed = [name for name in built if without_pdf_bytes(disk[name]) != without_pdf_bytes(built[name])]
    assert not changed, f"{changed} differ from the build: run 'fhir-migraine profiles build'"


def test_the_package_ships_the_same_fhir_package_as_profiles() -> None:
    shipped_files = shipped.package_files()
    assert shipped_files, "the FHIR package is missing from the installed fhir_migraine"
    assert shipped_files == on_disk(), "the shipped copy drifted from profiles/: run 'fhir-migraine profiles build'"


def test_the_package_ships_the_example_protocols_as_its_seed() -> None:
    folder = shipped.seed_protocols_folder()
    seeds = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    examples = {p.name: p.read_bytes() for p in (ROOT / "examples" / "protocols").iterdir() if p.is_file()}
    assert seeds == examples, "the shipped seed protocols drifted from examples/protocols: run 'fhir-migraine profiles build'"


def test_profiles_build_writes_the_published_and_the_shipped_copies(tmp_path: Path, built: dict[str, str]) -> None:
    for part in ("examples", "src/fhir_migraine/data/fhir-package/examples", "profiles"):
        (tmp_path / part).mkdir(parents=True)
    shutil.copytree(ROOT / "examples", tmp_path / "examples", dirs_exist_ok=True)
    (tmp_path / "src/fhir_migraine/data/fhir-package/StructureDefinition-gone.json").write_text("{}")
    run = run_cli("profiles", "build", "--root", str(tmp_path))
    assert run.code == 0, run.err
    for folder in (tmp_path / "profiles", tmp_path / "src/fhir_migraine/data/fhir-package"):
        assert shipped.package_files(folder) == built
    seeds = sorted(p.name for p in (tmp_path / "src/fhir_migraine/data/protocols").iterdir())
    assert seeds == sorted(p.name for p in (ROOT / "examples" / "protocols").glob("*.yaml"))


def test_package_json_names_the_package_and_its_dependency(built: dict[str, str]) -> None:
    manifest = json.loads(built["package.json"])
    assert manifest["name"] == "fhir-migraine.profiles"
    assert manifest["version"] == "0.1.0"
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    assert manifest["canonical"] == "https://fhir-migraine.org/fhir"
    assert manifest["type"] == "fhir.ig"


def test_every_profile_and_extension_is_in_the_package(resources: dict[str, dict[str, Any]]) -> None:
    ids = {r["id"] for r in of_type(resources, "StructureDefinition")}
    assert ids == {spec.id for spec in profiles.PROFILES} | {spec.id for spec in profiles.EXTENSIONS}


def test_every_conformance_resource_has_the_package_metadata(resources: dict[str, dict[str, Any]]) -> None:
    for url, resource in resources.items():
        assert url == f"https://fhir-migraine.org/fhir/{resource['resourceType']}/{resource['id']}"
        assert (resource["version"], resource["status"]) == ("0.1.0", "active"), url


def test_every_differential_has_unique_ids_and_paths_of_its_type(resources: dict[str, dict[str, Any]]) -> None:
    for sd in of_type(resources, "StructureDefinition"):
        assert (sd["fhirVersion"], sd["derivation"]) == ("4.0.1", "constraint"), sd["id"]
        assert "snapshot" not in sd, sd["id"]
        elements = sd["differential"]["element"]
        ids = [e["id"] for e in elements]
        assert len(ids) == len(set(ids)), f"{sd['id']}: duplicate element ids"
        for element in elements:
            assert element["path"] == path_of(element["id"]), element["id"]
            assert element["path"] == sd["type"] or element["path"].startswith(sd["type"] + "."), element["id"]
            if element["id"].rsplit(".", 1)[-1].count(":"):
                assert element["id"].endswith(":" + element["sliceName"]), element["id"]


def test_invariants_are_complete_errors_with_unique_keys(resources: dict[str, dict[str, Any]]) -> None:
    keys = []
    for sd in of_type(resources, "StructureDefinition"):
        for element in sd["differential"]["element"]:
            for constraint in element.get("constraint", []):
                assert set(constraint) == {"key", "severity", "human", "expression"}, element["id"]
                assert constraint["severity"] == "error"
                keys.append(constraint["key"])
    assert keys and len(keys) == len(set(keys))


def test_every_binding_points_at_a_value_set_of_the_package_with_an_expansion(
    resources: dict[str, dict[str, Any]],
) -> None:
    bindings = [
        (sd["id"], e["id"], e["binding"])
        for sd in of_type(resources, "StructureDefinition")
        for e in sd["differential"]["element"]
        if "binding" in e
    ]
    assert bindings
    for sd_id, element_id, binding in bindings:
        assert binding["strength"] == "required", element_id
        value_set = resources.get(binding["valueSet"])
        assert value_set is not None and value_set["resourceType"] == "ValueSet", f"{sd_id} {element_id}"
        assert value_set["expansion"]["contains"], binding["valueSet"]


def test_every_expansion_lists_exactly_the_composed_codes(resources: dict[str, dict[str, Any]]) -> None:
    for value_set in of_type(resources, "ValueSet"):
        composed = {
            (include["system"], c["code"], c["display"])
            for include in value_set["compose"]["include"]
            for c in include["concept"]
        }
        expanded = [(c["system"], c["code"], c["display"]) for c in value_set["expansion"]["contains"]]
        assert set(expanded) == composed and len(expanded) == len(composed), value_set["id"]
        assert value_set["expansion"]["total"] == len(expanded)


def test_every_project_code_in_a_value_set_is_in_its_code_system_with_the_same_display(
    resources: dict[str, dict[str, Any]],
) -> None:
    systems = {cs["url"]: {c["code"]: c for c in cs["concept"]} for cs in of_type(resources, "CodeSystem")}
    assert set(systems) == {terminology.DIARY_CS, terminology.INFUSION_CS}
    for value_set in of_type(resources, "ValueSet"):
        for code in value_set["expansion"]["contains"]:
            if code["system"] in systems:
                concept = systems[code["system"]].get(code["code"])
                assert concept is not None, f"{value_set['id']}: {code['code']} is not in {code['system']}"
                assert concept["display"] == code["display"], f"{value_set['id']}: {code['code']}"


def test_every_project_code_a_profile_fixes_is_in_its_code_system(resources: dict[str, dict[str, Any]]) -> None:
    systems = {cs["url"]: {c["code"] for c in cs["concept"]} for cs in of_type(resources, "CodeSystem")}
    for sd in of_type(resources, "StructureDefinition"):
        for element in sd["differential"]["element"]:
            for coding in element.get("patternCodeableConcept", {}).get("coding", []):
                if coding["system"] in systems:
                    assert coding["code"] in systems[coding["system"]], element["id"]


def test_code_systems_are_complete_with_a_display_and_definition_for_every_concept(
    resources: dict[str, dict[str, Any]],
) -> None:
    for code_system in of_type(resources, "CodeSystem"):
        assert code_system["content"] == "complete"
        codes = [c["code"] for c in code_system["concept"]]
        assert len(codes) == len(set(codes)) == code_system["count"]
        for concept in code_system["concept"]:
            assert concept["display"] and concept["definition"], concept["code"]


def test_every_extension_a_profile_uses_is_in_the_package(resources: dict[str, dict[str, Any]]) -> None:
    for sd in of_type(resources, "StructureDefinition"):
        for element in sd["differential"]["element"]:
            for type_ in element.get("type", []):
                for url in type_.get("profile", []):
                    assert resources[url]["type"] == "Extension", element["id"]


def test_there_is_one_example_per_profile(built: dict[str, str]) -> None:
    examples = sorted(name for name in built if name.startswith("examples/"))
    expected = sorted(
        f"examples/{spec.type}-{spec.id}-example.json" for spec in profiles.PROFILES
    )
    assert examples == expected


@pytest.mark.parametrize("spec", profiles.PROFILES, ids=lambda s: s.id)
def test_every_example_declares_its_profile_and_parses_as_fhir_r4(built: dict[str, str], spec: Any) -> None:
    example = json.loads(built[f"examples/{spec.type}-{spec.id}-example.json"])
    assert example["resourceType"] == spec.type
    assert example["meta"]["profile"] == [f"https://fhir-migraine.org/fhir/StructureDefinition/{spec.id}"]
    get_fhir_model_class(spec.type).model_validate(example)


@pytest.mark.parametrize("kind", ["StructureDefinition", "ValueSet", "CodeSystem"])
def test_conformance_resources_parse_as_fhir(resources: dict[str, dict[str, Any]], kind: str) -> None:
    for resource in of_type(resources, kind):
        get_fhir_model_class(kind).model_validate(resource)


def package_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def test_profiles_package_writes_the_package_the_same_bytes_twice(tmp_path: Path, built: dict[str, str]) -> None:
    first, second = tmp_path / "first.tgz", tmp_path / "second.tgz"
    for out in (first, second):
        run = run_cli("profiles", "package", "--out", str(out))
        assert run.code == 0, run.err
    assert first.read_bytes() == second.read_bytes()
    members = package_members(first.read_bytes())
    assert list(members) == sorted(f"package/{name}" for name in built)
    assert "package/package.json" in members
    assert {name.rsplit("/", 1)[0] for name in members} == {"package", "package/examples"}
    assert members["package/package.json"].decode("utf-8") == built["package.json"]
    assert {name: data.decode("utf-8") for name, data in members.items()} == {f"package/{n}": t for n, t in built.items()}


def test_profiles_build_outside_the_project_is_a_usage_error(tmp_path: Path) -> None:
    run = run_cli("profiles", "build", "--root", str(tmp_path))
    assert run.code == 2
    assert "no examples/" in run.err
