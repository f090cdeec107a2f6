"""The SMART app as a clinician meets it, in headless Chromium: launched by the test EHR, the month
page of the example diary (its figures equal to the summary endpoint's and the PDF's), the
medication-overuse line, the keyboard, the app inside another origin's iframe with third-party
cookies blocked, and the EHR's refusal and an empty diary shown as such. Screenshots of the main
views go to tests/artifacts/ at 1280x800 and 390 wide."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from typing import Any
from urllib.parse import quote

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.conftest import ARTIFACTS, Stage

pytestmark = pytest.mark.ehr
MONTH = "2026-11"


def wait_for_page(driver: Any, state: str | None = None, timeout: float = 90) -> None:
    """Until the loading page has gone on and a month page (or the ``state`` page) is shown."""
    if state is None:
        WebDriverWait(driver, timeout).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "section.calendar")))
    else:
        WebDriverWait(driver, timeout).until(expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, f'main[data-state="{state}"]')))


def screenshots(driver: Any, name: str) -> None:
    """The page as it is now at 1280x800 and at 390 wide (a phone), then back to 1280x800."""
    for width, height, mobile in ((1280, 800, False), (390, 844, True)):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        driver.save_screenshot(str(ARTIFACTS / f"{name}-{width}.png"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})


def open_month(driver: Any, stage: Stage, patient: str, month: str | None = None) -> str:
    """Launch as the EHR does for ``patient``; the path of the session's pages (the month shown when given)."""
    driver.get(stage.launch_url(patient))
    wait_for_page(driver)
    path = re.sub(r"/[0-9]{4}-[0-9]{2}$", "/", driver.current_url)
    if month is not None:
        driver.get(f"{path.rstrip('/')}/{month}")
        wait_for_page(driver)
    return path


def pdf_headache_days(stage: Stage, patient: str) -> int:
    answer = stage.api(f"/patients/{patient}/report?month={MONTH}")
    assert answer.status_code == 200 and answer.content.startswith(b"%PDF")
    tool = shutil.which("pdftotext")
    assert tool is not None, "pdftotext (poppler-utils) is installed by scripts/setup"
    text = subprocess.run([tool, "-layout", "-", "-"], input=answer.content, capture_output=True, check=True).stdout.decode()
    found = re.search(r"Headache days\s+(\d+)\s", text)
    assert found is not None, text[:500]
    return int(found.group(1))


def test_an_ehr_launch_shows_the_month_whose_headache_days_agree_with_the_summary_and_the_pdf(browser, stage) -> None:
    open_month(browser, stage, stage.month_patient)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Headache diary: November 2026"  # the diary's latest month
    shaded = browser.find_elements(By.CSS_SELECTOR, '.calendar td[data-headache="yes"]')
    summary = stage.api(f"/patients/{stage.month_patient}/summary?month={MONTH}").json()
    assert len(shaded) == summary["headache_days"] == pdf_headache_days(stage, stage.month_patient) > 0
    figure = browser.find_element(By.CSS_SELECTOR, '[data-figure="headache_days"]').text
    assert int(figure) == summary["headache_days"]
    page = browser.page_source
    assert "Trend," in page and "Attacks" in page and "MIDAS" in page
    assert browser.find_elements(By.CSS_SELECTOR, ".trend .chart svg") and browser.find_elements(By.CSS_SELECTOR, ".trend-table tbody tr")
    assert browser.execute_script("return document.cookie") == ""
    screenshots(browser, "smart-month")


def test_the_next_month_lists_the_infusions_ordered_with_their_protocol_and_doses(browser, stage) -> None:
    open_month(browser, stage, stage.month_patient, "2026-12")  # the example orders start in December
    rows = browser.find_elements(By.CSS_SELECTOR, ".infusions table.list tbody tr")
    assert rows
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert all(re.fullmatch(r"2026-12-\d\d", c[0]) for c in cells)
    assert any(c[1] != "not named" for c in cells) and any(re.search(r"\d", c[3]) for c in cells)


def test_a_diary_that_crosses_the_overuse_threshold_shows_the_line_and_the_month_above_it(browser, stage) -> None:
    open_month(browser, stage, stage.overuse_patient)
    svg = browser.find_element(By.CSS_SELECTOR, ".trend .chart svg").get_attribute("outerHTML")
    assert "Overuse threshold 10 days" in svg and "Overuse threshold 15 days" in svg
    reached = browser.find_elements(By.CSS_SELECTOR, ".trend-table td.reached")
    assert reached, "no month of the overuse diary reaches a threshold"
    acute = [int(td.get_attribute("data-acute")) for td in browser.find_elements(By.CSS_SELECTOR, ".trend-table td[data-acute]")]
    assert max(acute) >= 10
    assert browser.find_elements(By.CSS_SELECTOR, ".overuse li.flag")
    screenshots(browser, "smart-overuse")


def test_the_keyboard_reaches_the_previous_month_and_opens_it(browser, stage) -> None:
    open_month(browser, stage, stage.month_patient)
    browser.find_element(By.TAG_NAME, "body").click()
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.text == "Skip to the diary"
    ActionChains(browser).send_keys(Keys.TAB).perform()
    focused = browser.switch_to.active_element
    assert focused.get_attribute("id") == "previous-month"
    assert focused.value_of_css_property("outline-style") == "solid"  # the focus is visible
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    WebDriverWait(browser, 90).until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Headache diary: October 2026")


def test_the_app_works_inside_an_iframe_of_another_origin_with_third_party_cookies_blocked(browser, stage) -> None:
    launch = stage.launch_url(stage.month_patient)
    browser.get(f"{stage.front_door}/ehr?app={quote(launch, safe='')}")
    frame = browser.find_element(By.ID, "app")
    browser.switch_to.frame(frame)
    try:
        wait_for_page(browser)
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Headache diary: ")
        assert browser.execute_script("return window.location.origin") != stage.front_door
        browser.find_element(By.ID, "previous-month").click()
        WebDriverWait(browser, 90).until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Headache diary: October 2026")
    finally:
        browser.switch_to.default_content()
    browser.save_screenshot(str(ARTIFACTS / "smart-iframe-1280.png"))


def test_a_search_the_ehr_refuses_is_shown_as_an_error_state(browser, stage) -> None:
    stage.smart.refuse.add("MedicationStatement")
    try:
        browser.get(stage.launch_url(stage.month_patient))
        wait_for_page(browser, "error")
    finally:
        stage.smart.refuse.clear()
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "The EHR refused a request" in text and "MedicationStatement" in text and "403" in text
    assert "Traceback" not in browser.page_source
    screenshots(browser, "smart-error")


def test_a_patient_with_no_diary_gets_the_empty_state(browser, stage) -> None:
    browser.get(stage.launch_url(stage.empty_patient))
    wait_for_page(browser, "empty")
    assert "No headache diary yet" in browser.find_element(By.TAG_NAME, "h1").text
    screenshots(browser, "smart-empty")


def test_the_month_prints_without_its_navigation(browser, stage) -> None:
    open_month(browser, stage, stage.month_patient)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not browser.find_element(By.CSS_SELECTOR, "nav.months").is_displayed()
        assert browser.find_element(By.CSS_SELECTOR, "section.calendar").is_displayed()
        assert browser.find_element(By.CSS_SELECTOR, ".trend-table").is_displayed()
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    printed = browser.execute_cdp_cmd("Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69, "printBackground": True})
    data = base64.b64decode(printed["data"])
    assert data.startswith(b"%PDF")
    (ARTIFACTS / "smart-month-printed.pdf").write_bytes(data)
