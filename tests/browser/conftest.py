"""What the browser tests of the SMART app start: the local HAPI test EHR (``tests.integration``'s
``ehr_url``), loaded with the example month and orders; the test SMART authorization server in front
of it (``tests.smartehr``); the service on a loopback port; headless Chromium driven by Selenium
through the system's chromedriver (Debian's ``chromium`` and ``chromium-driver``, installed by
scripts/setup; no browser is ever downloaded). In CI (CI=true) a missing browser fails the run."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from fhir_migraine.api import create_app, start_outbox_worker, stop_outbox_worker
from fhir_migraine.config import ApiAuthSettings, EhrSettings, OutboxSettings, Settings, SmartSettings, WorkerSettings
from tests.conftest import API_TOKEN, EXAMPLES, ROOT
from tests.integration.conftest import ehr_url  # noqa: F401 (the fixture)
from tests.integration.helpers import example_diary, example_orders
from tests.smartehr import Running, SmartEhr

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CLIENT_ID = "fhir-migraine-diary"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
         "--window-size=1280,800")


class _Later:
    """A WSGI app set after the server has its port (the service's settings name its own URL)."""

    app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


@dataclass
class Stage:
    """Everything a browser test needs: the service's URL, the test EHR's front door, and the patients."""

    service: str
    smart: SmartEhr
    front_door: str  # the test EHR at 127.0.0.1: another origin than the service at localhost
    month_patient: str
    overuse_patient: str
    empty_patient: str

    def launch_url(self, patient: str) -> str:
        return f"{self.service}/smart/launch?iss={self.smart.iss}&launch={self.smart.new_launch(patient)}"

    def api(self, path: str) -> requests.Response:
        return requests.get(f"{self.service}{path}", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=120)


def _settle(service: str, ids: list[str], timeout: float = 180.0) -> None:
    import time

    deadline = time.time() + timeout
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    while True:
        states = [requests.get(f"{service}/outbox/{i}", headers=headers, timeout=30).json()["state"] for i in ids]
        if all(s == "sent" for s in states):
            return
        if any(s in ("dead", "conflict") for s in states) or time.time() > deadline:
            raise AssertionError(f"the example data did not reach the test EHR: {states}")
        time.sleep(0.3)


@pytest.fixture(scope="session")
def stage(ehr_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:  # noqa: F811
    later = _Later()
    server = make_server("127.0.0.1", 0, later, threaded=True)
    service = f"http://localhost:{server.server_port}"
    front = Running(SmartEhr(CLIENT_ID, f"{service}/smart/callback", fhir_target=ehr_url))
    front_door = front.ehr.base.replace("localhost", "127.0.0.1")
    folder = tmp_path_factory.mktemp("smart-service")
    settings = Settings(database=str(folder / "service.sqlite3"), seed_protocols=str(EXAMPLES / "protocols"),
                        api=ApiAuthSettings(token=API_TOKEN),
                        ehr=EhrSettings(url=ehr_url, transaction_size=40), outbox=OutboxSettings(retry_base=0.1),
                        worker=WorkerSettings(interval=0.1),
                        smart=SmartSettings(client_id=CLIENT_ID, issuers=(front.ehr.iss,), public_url=service,
                                            frame_ancestors=(front_door,)))
    later.app = create_app(settings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    assert start_outbox_worker(later.app, stop_at_exit=False)
    run = uuid.uuid4().hex[:8]
    month, overuse, empty = f"Patient/smart-{run}", f"Patient/smart-overuse-{run}", f"Patient/smart-empty-{run}"
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    ids = [requests.post(f"{service}/orders", json=o, headers=headers, timeout=60).json()["outbox_id"]
           for o in example_orders(run, month)]
    ids.append(requests.post(f"{service}/diary", json=example_diary(run, month), headers=headers, timeout=60).json()["outbox_id"])
    overuse_diary = _overuse_diary(run, overuse)
    ids.append(requests.post(f"{service}/diary", json=overuse_diary, headers=headers, timeout=60).json()["outbox_id"])
    _settle(service, ids)
    try:
        yield Stage(service, front.ehr, front_door, month, overuse, empty)
    finally:
        stop_outbox_worker(later.app)
        server.shutdown()
        front.stop()


def _overuse_diary(run: str, patient: str) -> list[dict[str, Any]]:
    import json

    entries = json.loads((EXAMPLES / "diary" / "overuse.json").read_text())
    for entry in entries:
        entry["entry_id"] = f"{entry['entry_id']}-{run}"
        entry["patient"] = {"reference": patient}
    return entries


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists() and shutil.which(Path(p).name) is None]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        missing.append(f"selenium ({error})")
    if missing:
        message = f"the browser tests need {', '.join(missing)} (scripts/setup installs them)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never fetch a driver or a browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    # Third-party cookies blocked, as in a browser that frames the app inside an EHR.
    options.add_experimental_option("prefs", {"profile.block_third_party_cookies": True, "profile.cookie_controls_mode": 1})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(120)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
