"""Browser journeys in the history: search, select several and delete, and the phone layout."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from accounts.services import user_create
from detection.models import Analysis
from tests.browser import PHONE, log_in, resize, screenshot, wait_for_text

from .base import PASSWORD, astronaut_jpeg

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [
    ("beach-holiday.jpg", {"status": "done", "verdict": "real", "fake_probability": 0.08}),
    ("interview-with-a-very-long-name-that-would-overflow-a-phone-screen.mp4",
     {"status": "done", "verdict": "fake", "fake_probability": 0.93, "media_type": "video"}),
    ("beach-party.jpg", {"status": "done", "verdict": "no_face"}),
    ("portrait.png", {"status": "running", "progress": 0.4}),
    ("meeting.mp4", {"status": "queued", "media_type": "video"}),
    ("broken.jpg", {"status": "failed", "error": "The file could not be decoded."}),
]


@pytest.fixture
def alice():
    media = tempfile.mkdtemp(prefix="media-")
    with override_settings(
        MEDIA_ROOT=media, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
    ):
        user = user_create(username="alice", email="alice@example.org", password=PASSWORD)
        for name, fields in ROWS:
            fields = {"media_type": "image", **fields}
            analysis = Analysis(owner=user, original_name=name, size=1000, sha256="0" * 64, **fields)
            analysis.file.save(name, ContentFile(astronaut_jpeg()), save=False)
            analysis.save()
        yield user
    shutil.rmtree(media, ignore_errors=True)


def open_history(browser, live_server, query: str = ""):
    log_in(browser, live_server.url, username="alice", password=PASSWORD)
    WebDriverWait(browser, 10).until(EC.url_contains("/upload/"))
    browser.get(f"{live_server.url}/analyses/{query}")
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "history")))


def names_shown(browser) -> list[str]:
    return [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#history .cell-name")]


def test_a_person_searches_then_deletes_two_analyses_after_confirming(browser, live_server, alice):
    open_history(browser, live_server)
    screenshot(browser, "history-desktop")
    assert len(names_shown(browser)) == len(ROWS)

    search = browser.find_element(By.ID, "id_q")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=id_q]").is_displayed()
    search.send_keys("beach")
    browser.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(EC.url_contains("q=beach"))
    WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: sorted(names_shown(driver)) == ["beach-holiday.jpg", "beach-party.jpg"]
    )

    delete = browser.find_element(By.ID, "delete-selected")
    assert delete.get_attribute("aria-disabled") == "true"  # nothing selected yet, but in the Tab order
    delete.click()
    wait_for_text(browser, "#delete-hint", "Tick the analyses to delete first.")
    assert "q=beach" in browser.current_url  # nothing was sent
    browser.find_element(By.ID, "select-all").click()
    assert delete.get_attribute("aria-disabled") == "false"
    delete.click()

    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "confirm-delete")))
    assert "Delete 2 analyses?" in browser.find_element(By.TAG_NAME, "h1").text
    assert Analysis.objects.filter(owner=alice).count() == len(ROWS)
    browser.find_element(By.ID, "confirm-delete").click()

    wait_for_text(browser, ".messages", "2 analyses were deleted.")
    remaining = Analysis.objects.filter(owner=alice).values_list("original_name", flat=True)
    assert not [name for name in remaining if "beach" in name]
    assert len(remaining) == len(ROWS) - 2


def test_the_history_fits_a_phone_screen_without_sideways_scrolling(browser, live_server, alice):
    open_history(browser, live_server)
    resize(browser, PHONE)
    browser.refresh()
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "history")))

    width = browser.execute_script("return document.documentElement.scrollWidth")
    screenshot(browser, "history-phone")
    assert width <= PHONE[0]
    header = browser.find_element(By.CSS_SELECTOR, "#history thead")
    assert not header.is_displayed()  # cards, not a table


def test_on_a_phone_the_filters_beyond_the_name_fold_away_unless_one_is_set(browser, live_server, alice):
    open_history(browser, live_server)
    toggle = browser.find_element(By.ID, "filters-toggle")
    verdict = browser.find_element(By.ID, "id_verdict")
    assert not toggle.is_displayed() and verdict.is_displayed()  # a desktop shows them all
    screenshot(browser, "history-filters-1400")

    resize(browser, PHONE)  # the page hears of it a moment later (a media query change)
    WebDriverWait(browser, 5).until(lambda driver: toggle.is_displayed())
    assert toggle.get_attribute("aria-expanded") == "false"
    assert not verdict.is_displayed()
    assert browser.find_element(By.ID, "id_q").is_displayed()
    # the first card is on the first screen
    first = browser.find_element(By.CSS_SELECTOR, "#history tbody tr")
    assert browser.execute_script("return arguments[0].getBoundingClientRect().top;", first) < PHONE[1]
    screenshot(browser, "history-filters-folded-390")
    toggle.click()
    assert verdict.is_displayed() and toggle.get_attribute("aria-expanded") == "true"

    browser.get(f"{live_server.url}/analyses/?verdict=fake")
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "history")))
    assert browser.find_element(By.ID, "id_verdict").is_displayed()  # a filter in use is never hidden
    assert names_shown(browser) == [ROWS[1][0]]


def test_a_running_row_updates_by_itself_when_its_analysis_finishes(browser, live_server, alice):
    open_history(browser, live_server)
    running = Analysis.objects.get(owner=alice, original_name="portrait.png")
    badge = browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{running.pk}"] [data-badge]')
    assert badge.text == "Running"

    Analysis.objects.filter(pk=running.pk).update(
        status="done", verdict="fake", fake_kind="ai_generated", fake_probability=0.004,
        synthetic_probability=0.77, progress=1.0,
    )

    WebDriverWait(browser, 15).until(lambda driver: badge.text == "Fake: AI-generated face")
    assert "badge-fake" in badge.get_attribute("class")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-id="{running.pk}"]')
    assert "77.0%" in row.text and "0.4%" not in row.text  # the probability its verdict stands on
