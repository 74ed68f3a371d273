"""The dashboard in a real headless browser (Debian's ``chromium`` driven through Selenium): the
quarantined order is shown, and releasing it works through the page itself.

Needs ``chromium`` and its driver (Debian's ``chromium-driver``); ``.ci/run`` installs both and sets
``SCAYLE_ORDERWISE_REQUIRE_BROWSER=1``, which turns a missing browser into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from service_process import ServiceProcess, free_port, wait_for

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if CHROMIUM is None or DRIVER is None:
        message = (
            "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        )
        if os.environ.get("SCAYLE_ORDERWISE_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1366,768",  # a laptop screen
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_dashboard_shows_the_quarantined_order_and_releases_it_through_the_page(
    browser: object, tmp_path: Path
) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    driver = browser
    port = free_port()
    args = ["serve", "--sandbox", "--host", "127.0.0.1", "--port", str(port)]
    with ServiceProcess(args, tmp_path, port=port) as service:
        service.wait_up()
        driver.get(service.url + "/")
        assert "Exceptions" in driver.title

        quarantined = driver.find_element(By.ID, "quarantined").find_element(
            By.XPATH, "following-sibling::table[1]"
        )
        row = quarantined.find_element(By.XPATH, ".//tr[td/a[normalize-space()='5004']]")
        assert row.is_displayed()
        assert "unknown_variant" in row.text and "TEE-LIMITED-EDITION" in row.text
        # Readable on a laptop: the page does not scroll sideways.
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        )
        driver.save_screenshot(str(tmp_path / "dashboard.png"))

        # The release form asks for a reason: submitting without one does nothing.
        reason = row.find_element(By.NAME, "reason")
        button = row.find_element(By.XPATH, ".//button[normalize-space()='Release']")
        button.click()
        assert driver.current_url.rstrip("/") == service.url
        assert driver.execute_script("return arguments[0].validity.valueMissing", reason)

        reason.send_keys("TEE-LIMITED-EDITION set up in OrderWise")
        button.click()

        def notice_shown() -> bool:
            try:  # the page is being replaced: an element found a moment ago may be gone
                return "released" in driver.find_element(By.TAG_NAME, "main").text
            except (NoSuchElementException, StaleElementReferenceException):
                return False

        assert wait_for(notice_shown)
        notice = driver.find_element(By.CSS_SELECTOR, "[role=status]")
        assert "order:5004 released" in notice.text

        section = driver.find_element(By.ID, "quarantined").find_element(
            By.XPATH, "following-sibling::*[1]"
        )
        assert "5004" not in section.text

        driver.get(service.url + "/records/order:5004")
        history = driver.find_element(By.TAG_NAME, "table").text
        assert "released: TEE-LIMITED-EDITION set up in OrderWise" in history
        assert "sandbox visitor" in history
        assert service.terminate() == 0
