"""The built wheel, installed in a fresh virtual environment, used from a folder outside the
project: every command and the service work as they do in the checkout.

``scripts/check-wheel`` builds and installs the wheel and runs these tests with its Python
(``FHIR_MIGRAINE_TEST_INSTALLED=1``); the commands are the console script the wheel installed,
run in a temporary folder, reading the project's examples by absolute path.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import fhir_migraine
from tests.conftest import EXAMPLES, PROTOCOLS, ROOT

COMMAND = Path(sys.executable).with_name("fhir-migraine")
ORDERS = sorted((EXAMPLES / "orders").glob("*.json"))
GOLDEN = [*sorted((EXAMPLES / "bundles").glob("*.json")), EXAMPLES / "diary" / "month.bundle.json"]
PACKAGE_EXAMPLES = sorted((ROOT / "profiles" / "examples").glob("*.json"))
TOKEN = "installed-wheel-test-token"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def run(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_MIGRAINE_")}
    return subprocess.run([str(COMMAND), *argv], cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_the_package_is_the_installed_one_not_the_checkout() -> None:
    where = Path(fhir_migraine.__file__).resolve()
    assert ROOT not in where.parents, f"fhir_migraine was imported from the checkout: {where}"
    assert COMMAND.is_file(), f"no console script next to {sys.executable}"


@pytest.mark.parametrize("order", ORDERS, ids=lambda p: p.stem)
def test_map_order_prints_the_golden_bundle(outside: Path, order: Path) -> None:
    result = run(outside, "map", "order", str(order), "--protocols", str(PROTOCOLS))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXAMPLES / "bundles" / f"{order.stem}.bundle.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["month.json", "month.ndjson", "month.csv"])
def test_map_diary_prints_the_golden_bundle(outside: Path, name: str) -> None:
    result = run(outside, "map", "diary", str(EXAMPLES / "diary" / name))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXAMPLES / "diary" / "month.bundle.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("order", ORDERS, ids=lambda p: p.stem)
def test_unmap_gives_the_order_back(outside: Path, order: Path) -> None:
    result = run(outside, "unmap", str(EXAMPLES / "bundles" / f"{order.stem}.bundle.json"), "--protocols", str(PROTOCOLS))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"orders": [json.loads(order.read_text(encoding="utf-8"))], "diary": []}


def test_unmap_gives_the_diary_back(outside: Path) -> None:
    result = run(outside, "unmap", str(EXAMPLES / "diary" / "month.bundle.json"))
    assert result.returncode == 0, result.stderr
    entries = json.loads((EXAMPLES / "diary" / "month.json").read_text(encoding="utf-8"))
    assert json.loads(result.stdout) == {"orders": [], "diary": entries}


@pytest.mark.parametrize("path", [*GOLDEN, *PACKAGE_EXAMPLES], ids=lambda p: p.name)
def test_validate_accepts_every_golden_file_and_package_example(outside: Path, path: Path) -> None:
    result = run(outside, "validate", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert not [i for i in outcome["issue"] if i["severity"] in ("error", "fatal")]


def test_validate_still_finds_a_broken_resource(outside: Path) -> None:
    bundle = json.loads((EXAMPLES / "bundles" / "ed-migraine-rescue.bundle.json").read_text(encoding="utf-8"))
    request = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationRequest")
    del request["subject"]
    (outside / "broken.json").write_text(json.dumps(request), encoding="utf-8")
    result = run(outside, "validate", "broken.json")
    assert result.returncode == 1
    assert "MedicationRequest.subject" in result.stdout


def test_profiles_package_writes_the_published_package(outside: Path) -> None:
    result = run(outside, "profiles", "package", "--out", "package.tgz")
    assert result.returncode == 0, result.stderr
    import tarfile

    with tarfile.open(outside / "package.tgz", "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read().decode("utf-8") for m in tar.getmembers()}  # type: ignore[union-attr]
    published = {f"package/{p.relative_to(ROOT / 'profiles').as_posix()}": p.read_text(encoding="utf-8")
                 for p in sorted((ROOT / "profiles").rglob("*.json"))}
    assert members == published


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def service(outside: Path) -> Iterator[str]:
    """``fhir-migraine serve`` from the wheel, in a folder outside the project, with its defaults
    (the shipped profiles and seed protocols, SQLite under var/) and no EHR."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_MIGRAINE_")}
    env.update(FHIR_MIGRAINE_API_TOKEN=TOKEN, FHIR_MIGRAINE_PORT=str(port), FHIR_MIGRAINE_WORKERS="1")
    process = subprocess.Popen([str(COMMAND), "serve"], cwd=outside, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the installed service did not start:\n{process.communicate()[1]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_installed_service_lists_every_profile_and_takes_an_order(service: str) -> None:
    metadata = requests.get(f"{service}/fhir/metadata", timeout=10)
    assert metadata.status_code == 200
    listed = {url for rest in metadata.json()["rest"] for r in rest["resource"] for url in r.get("supportedProfile", [])}
    definitions = [json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "profiles").glob("StructureDefinition-*.json")]
    profiles = {d["url"] for d in definitions if d["type"] != "Extension"}
    assert profiles and profiles <= listed
    order = (EXAMPLES / "orders" / "ed-migraine-rescue.json").read_text(encoding="utf-8")
    answer = requests.post(f"{service}/orders", data=order, timeout=30,
                           headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["resourceType"] == "Bundle"
    protocols = requests.get(f"{service}/protocols", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert {p["id"] for p in protocols.json()["protocols"]} == {p.stem for p in PROTOCOLS.glob("*.yaml")}


def test_the_wheel_holds_the_modules_of_the_checkout_and_no_others() -> None:
    installed = Path(fhir_migraine.__file__).resolve().parent
    source = ROOT / "src" / "fhir_migraine"

    def modules(folder: Path) -> set[str]:
        return {p.relative_to(folder).as_posix() for p in folder.rglob("*.py")}

    assert modules(installed) == modules(source)
