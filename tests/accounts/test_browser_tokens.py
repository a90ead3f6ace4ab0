"""The profile page's API tokens in Chromium: make one, copy it once, use it, revoke it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from accounts.services import user_create
from tests.browser import PHONE, log_in, resize, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


def api_status(live_server_url: str, key: str) -> int:
    request = urllib.request.Request(f"{live_server_url}/api/v1/analyses/", headers={"Authorization": f"Token {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            json.load(response)
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_a_person_makes_a_token_sees_it_once_uses_it_and_revokes_it(browser, live_server):
    user_create(username="alice", email="alice@example.org", password=PASSWORD)
    log_in(browser, live_server.url, username="alice", password=PASSWORD)
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")))

    browser.get(f"{live_server.url}/accounts/profile/")
    assert "You have no API token." in browser.page_source
    browser.find_element(By.NAME, "name").send_keys("newsroom script")
    browser.find_element(By.ID, "make-token").click()
    key = WebDriverWait(browser, 10).until(EC.visibility_of_element_located((By.ID, "api-token"))).text.strip()
    # the keyboard and the screen reader start at the new token, not at the top of the page
    WebDriverWait(browser, 5).until(lambda b: b.switch_to.active_element.get_attribute("id") == "new-token")
    browser.find_element(By.ID, "copy-token").click()  # shown by profile.js; headless Chromium may refuse the clipboard
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "copy-status").text)
    screenshot(browser, "profile-new-token")
    resize(browser, PHONE)
    screenshot(browser, "profile-new-token-phone")

    assert len(key) == 40 and api_status(live_server.url, key) == 200
    browser.get(f"{live_server.url}/accounts/profile/")
    assert key not in browser.page_source and key[:6] in browser.page_source

    browser.find_element(By.CSS_SELECTOR, ".revoke summary").click()
    browser.find_element(By.CSS_SELECTOR, ".revoke button.danger").click()
    WebDriverWait(browser, 10).until(EC.text_to_be_present_in_element((By.TAG_NAME, "main"), "was revoked"))
    assert api_status(live_server.url, key) == 401
    assert "You have no API token." in browser.page_source
