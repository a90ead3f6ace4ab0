"""What an anonymous visitor sees first."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser import PHONE, resize, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_visitor_learns_what_the_site_does_and_can_sign_up_or_log_in(browser, live_server):
    browser.get(live_server.url + "/")

    assert "Is this face real, or a deepfake?" in browser.find_element(By.TAG_NAME, "h1").text
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "What it does not do" in page
    assert browser.find_element(By.LINK_TEXT, "Create a free account").get_attribute("href").endswith("/accounts/signup/")
    assert browser.find_element(By.CSS_SELECTOR, "main a[href$='/accounts/login/']").is_displayed()
    icon = browser.find_element(By.CSS_SELECTOR, "link[rel=icon]").get_attribute("href")
    assert icon.endswith("favicon.svg")
    screenshot(browser, "front-page")

    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to the content"
    assert skip.is_displayed()

    resize(browser, PHONE)
    browser.refresh()
    assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    screenshot(browser, "front-page-phone")
