"""A person who forgot their password gets a link by e-mail and chooses a new one."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from accounts.services import user_create
from tests.browser import log_in, wait_for_text

pytestmark = pytest.mark.django_db(transaction=True)

OLD = "correct horse battery staple"
NEW = "a brand new staple for the horse"


def test_a_person_resets_their_password_through_the_link_in_the_email(browser, live_server, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    user_create(username="alice", email="alice@example.org", password=OLD)

    browser.get(f"{live_server.url}/accounts/login/")
    browser.find_element(By.LINK_TEXT, "Forgot your password?").click()
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.NAME, "email")))
    browser.find_element(By.NAME, "email").send_keys("alice@example.org")
    browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait_for_text(browser, "h1", "Check your e-mail")

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.org"]
    link = re.search(r"https?://\S+/accounts/password/reset/\S+/", message.body).group(0)

    browser.get(link)
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.NAME, "new_password1")))
    browser.find_element(By.NAME, "new_password1").send_keys(NEW)
    browser.find_element(By.NAME, "new_password2").send_keys(NEW)
    browser.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
    wait_for_text(browser, "h1", "Your password was changed")

    assert get_user_model().objects.get(username="alice").check_password(NEW)
    log_in(browser, live_server.url, username="alice", password=NEW)
    WebDriverWait(browser, 10).until(EC.url_contains("/upload/"))

    browser.get(link)  # a used link
    assert "This link no longer works" in browser.find_element(By.TAG_NAME, "h1").text
