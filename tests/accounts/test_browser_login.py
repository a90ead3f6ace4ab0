"""The smallest browser journey: a person logs in and lands on the upload page."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from accounts.services import user_create
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


def test_a_person_logs_in_and_sees_the_upload_form(browser, live_server):
    user_create(username="alice", email="alice@example.org", password=PASSWORD)

    log_in(browser, live_server.url, username="alice", password=PASSWORD)

    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")))
    assert "alice" in browser.page_source
    screenshot(browser, "login-then-upload")
