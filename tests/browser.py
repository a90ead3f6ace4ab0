"""Browser tests: headless Debian Chromium driven by Selenium against a live test server.

`make test` installs `chromium` and `chromium-driver` when they are missing (as root). Where no
browser can be had the browser tests skip and say why; they never pass without running.

Use the `browser` fixture (a fresh Chrome window per test, 1400x1000) and `screenshot(browser,
name)`, which writes `out/screenshots/<name>.png` for people to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "out" / "screenshots"
DESKTOP = (1400, 1000)
PHONE = (390, 844)


def browser_missing_reason() -> str | None:
    """Why no browser test can run here, or None when Chromium and its driver are present."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (make test installs it)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() or shutil.which(path)):
            return f"{path} is missing: apt-get install -y chromium chromium-driver (make test does it as root)"
    return None


def new_browser(size: tuple[int, int] = DESKTOP):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    return driver


def resize(driver, size: tuple[int, int]) -> None:
    """Make the page's viewport (not the window) exactly `size`, so layouts can be measured."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600},
    )


def screenshot(driver, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of the page (the whole scrollable page by default) under out/screenshots/."""
    import base64

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if full_page:
        data = driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "format": "png"})
        path.write_bytes(base64.b64decode(data["data"]))
    else:
        driver.save_screenshot(str(path))
    return path


def wait_for_text(driver, css: str, text: str, *, timeout: float = 10) -> None:
    """Wait until the first element matching `css` contains `text`, across page loads.

    Selenium's `text_to_be_present_in_element` looks the element up and then reads its text in two
    round trips; when a form submission replaces the page in between, Chromium answers "Node with
    given id does not belong to the document" (a plain WebDriverException, not a stale-element one)
    and the wait gives up. Reading the text in one script call has no such gap.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    script = "const el = document.querySelector(arguments[0]); return el ? el.textContent : null;"
    WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(
        lambda d: text in (d.execute_script(script, css) or ""),
        message=f"no {css!r} containing {text!r} within {timeout} s",
    )


def log_in(driver, live_server_url: str, *, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{live_server_url}/accounts/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form [type=submit]").click()


@pytest.fixture
def browser():
    reason = browser_missing_reason()
    if reason:
        pytest.skip(reason)
    driver = new_browser()
    try:
        yield driver
    finally:
        driver.quit()
