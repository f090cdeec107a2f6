"""What the package ships and reads at run time: the FHIR package and the seed protocols are
package data, a missing package is a start-up error, and the seed of the library is explicit."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_migraine import shipped, validation
from fhir_migraine.api import create_app
from fhir_migraine.config import ApiAuthSettings, Settings
from fhir_migraine.errors import ConfigError
from fhir_migraine.library import ProtocolStore
from tests.conftest import PROTOCOLS


@pytest.fixture
def no_fhir_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The shipped FHIR package replaced by an empty folder, and the process-wide validator forgotten."""
    empty = tmp_path / "fhir-package"
    empty.mkdir()
    monkeypatch.setattr(shipped, "fhir_package_folder", lambda: empty)
    validation.default_validator.cache_clear()
    yield empty
    validation.default_validator.cache_clear()


def test_the_shipped_package_has_every_kind_of_conformance_resource() -> None:
    kinds = {r["resourceType"] for r in shipped.conformance_resources()}
    assert kinds == {"StructureDefinition", "ValueSet", "CodeSystem", "Questionnaire"}
    assert "package.json" in shipped.package_files()
    assert any(name.startswith("examples/") for name in shipped.package_files())


def test_a_missing_fhir_package_is_a_start_up_error(no_fhir_package: Path, tmp_path: Path) -> None:
    settings = Settings(database=str(tmp_path / "db.sqlite3"), api=ApiAuthSettings(token="t"))
    with pytest.raises(ConfigError, match="no StructureDefinition"):
        create_app(settings)


def test_a_package_that_is_not_json_names_the_file(no_fhir_package: Path) -> None:
    (no_fhir_package / "StructureDefinition-broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="StructureDefinition-broken.json"):
        shipped.conformance_resources()


def test_the_library_is_seeded_from_the_shipped_protocols_by_default(tmp_path: Path) -> None:
    store = ProtocolStore(str(tmp_path / "db.sqlite3"))
    shipped_ids = {p.name.rsplit(".", 1)[0] for p in shipped.seed_protocols_folder().iterdir()}
    assert {p["id"] for p in store.summaries()} == shipped_ids
    assert "ed-migraine-rescue" in shipped_ids


def test_the_library_is_seeded_from_the_folder_the_settings_name(tmp_path: Path) -> None:
    folder = tmp_path / "seed"
    folder.mkdir()
    shutil.copy(PROTOCOLS / "dhe-repeat.yaml", folder)
    settings = Settings.from_env({"FHIR_MIGRAINE_SEED_PROTOCOLS": str(folder)})
    assert settings.seed_protocols == str(folder)
    store = ProtocolStore(str(tmp_path / "db.sqlite3"), seed=settings.seed_protocols)
    assert [p["id"] for p in store.summaries()] == ["dhe-repeat"]


def test_a_seed_folder_that_does_not_exist_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FHIR_MIGRAINE_SEED_PROTOCOLS"):
        Settings.from_env({"FHIR_MIGRAINE_SEED_PROTOCOLS": str(tmp_path / "nowhere")})


def test_ehr_credentials_that_cannot_work_stop_the_service_at_start(tmp_path: Path) -> None:
    env = {
        "FHIR_MIGRAINE_DB": str(tmp_path / "db.sqlite3"), "FHIR_MIGRAINE_API_TOKEN": "t",
        "FHIR_MIGRAINE_EHR_URL": "https://ehr.example.org/fhir", "FHIR_MIGRAINE_EHR_AUTH": "client-credentials",
        "FHIR_MIGRAINE_EHR_TOKEN_URL": "http://ehr.example.org/token", "FHIR_MIGRAINE_EHR_CLIENT_ID": "fm",
        "FHIR_MIGRAINE_EHR_CLIENT_SECRET": "s",
    }
    with pytest.raises(ConfigError, match="FHIR_MIGRAINE_EHR_TOKEN_URL must use https"):
        create_app(Settings.from_env(env))
