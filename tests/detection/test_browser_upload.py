"""Browser journeys on the upload page: several files at once with a progress bar each, each
followed to its verdict, and an oversize file refused before anything is sent."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.template.defaultfilters import filesizeformat
from django.test import override_settings
from django_q.conf import Conf
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from accounts.services import user_create
from detection import services
from detection.models import Analysis
from detection.presenters import percent_text
from tests.browser import log_in, screenshot, wait_for_text

from .base import PASSWORD, astronaut_jpeg, astronaut_mp4

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(monkeypatch, detector_checkpoint, tmp_path):
    """Uploads go to a temporary folder and are analysed inline by the real detector."""
    media = tempfile.mkdtemp(prefix="media-")
    monkeypatch.setattr(Conf, "SYNC", True)
    with override_settings(
        MEDIA_ROOT=media,
        DEEPFAKE_MODEL_PATH=str(detector_checkpoint),
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    ):
        yield tmp_path
    shutil.rmtree(media, ignore_errors=True)


def written(folder: Path, name: str, content: bytes) -> str:
    path = folder / name
    path.write_bytes(content)
    return str(path)


def slow_uploads(browser, bytes_per_second: int) -> None:
    """Throttle what the browser sends, so that an upload's progress can be watched."""
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second},
    )


def first_bar_partly_filled(driver) -> bool:
    value = driver.execute_script(
        "var bar = document.querySelector('#upload-list progress'); return bar && bar.value;"
    )
    return bool(value) and 0 < value < 100


def signed_in(browser, live_server):
    alice = user_create(username="alice", email="alice@example.org", password=PASSWORD)
    log_in(browser, live_server.url, username="alice", password=PASSWORD)
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "dropzone")))
    return alice


def test_two_files_get_a_progress_bar_each_and_then_a_link_to_each_result(
    browser, live_server, site
):
    alice = signed_in(browser, live_server)
    photo = written(site, "astronaut photo.jpg", astronaut_jpeg())
    video = written(site, "astronaut clip.mp4", astronaut_mp4())

    zone = browser.find_element(By.ID, "dropzone")
    assert zone.is_displayed()
    assert not browser.find_element(By.ID, "storage-use").is_displayed()  # nothing kept yet
    slow_uploads(browser, 16 * 1024)
    browser.find_element(By.ID, "id_file").send_keys(f"{photo}\n{video}")

    items = WebDriverWait(browser, 10).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, "#upload-list .upload-item")
    )
    assert len(items) == 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "#upload-list progress")) == 2
    WebDriverWait(browser, 10, poll_frequency=0.05).until(first_bar_partly_filled)
    screenshot(browser, "upload-in-progress")

    links = WebDriverWait(browser, 60).until(
        lambda driver: (found := driver.find_elements(By.CSS_SELECTOR, "a.upload-result"))
        and len(found) == 2
        and found
    )
    analyses = Analysis.objects.filter(owner=alice)
    assert set(analyses.values_list("status", flat=True)) == {Analysis.Status.DONE}
    assert sorted(analyses.values_list("original_name", flat=True)) == [
        "astronaut clip.mp4",
        "astronaut photo.jpg",
    ]
    hrefs = sorted(link.get_attribute("href") for link in links)
    assert hrefs == sorted(f"{live_server.url}/analyses/{a.pk}/" for a in analyses)
    kept = filesizeformat(len(astronaut_jpeg()) + len(astronaut_mp4()))
    wait_for_text(browser, "#storage-use", f"take up {kept} of the ")  # without a reload
    assert browser.find_element(By.ID, "storage-use").is_displayed()
    screenshot(browser, "upload-done")

    browser.get(hrefs[0])
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".verdict")))


def badges(driver) -> list[str]:
    return [badge.text for badge in driver.find_elements(By.CSS_SELECTOR, "#upload-list .badge")]


def test_each_upload_follows_its_analysis_to_the_verdict_without_a_reload(browser, live_server, site, monkeypatch):
    alice = signed_in(browser, live_server)
    monkeypatch.setattr(Conf, "SYNC", False)  # queued; the test runs each analysis as the worker would
    photo = written(site, "astronaut photo.jpg", astronaut_jpeg())
    wall = written(site, "plain wall.png", cv2.imencode(".png", np.full((240, 320, 3), 128, np.uint8))[1].tobytes())
    browser.execute_script("window.notReloaded = true;")

    browser.find_element(By.ID, "id_file").send_keys(f"{photo}\n{wall}")
    WebDriverWait(browser, 20).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "a.upload-result")) == 2)
    assert badges(browser) == ["Queued", "Queued"]
    bars = lambda driver: driver.execute_script(
        "return Array.prototype.map.call(document.querySelectorAll('#upload-list progress'), function (b) { return b.value; });"
    )
    assert bars(browser) == [0, 0]  # the bar is the analysis's now: queued, not done

    first = Analysis.objects.get(owner=alice, original_name="astronaut photo.jpg")
    services.analysis_run(analysis_id=first.pk)
    first.refresh_from_db()
    WebDriverWait(browser, 20).until(lambda driver: badges(driver)[0] == first.verdict_label)
    photo_item, wall_item = browser.find_elements(By.CSS_SELECTOR, "#upload-list .upload-item")
    assert badges(browser) == [first.verdict_label, "Queued"]
    assert bars(browser) == [100, 0]
    assert f"(fake probability {percent_text(first.verdict_probability)})" in photo_item.text
    # screen readers hear the verdict once, not the list's every change
    assert browser.find_element(By.ID, "upload-list").get_attribute("aria-live") is None
    heard = [line.get_attribute("textContent") for line in browser.find_elements(By.CSS_SELECTOR, "#upload-announce p")]
    assert heard == [
        "astronaut photo.jpg: uploaded, queued",
        "plain wall.png: uploaded, queued",
        f"astronaut photo.jpg: {first.verdict_label} (fake probability {percent_text(first.verdict_probability)})",
    ]
    screenshot(browser, "upload-followed")

    second = Analysis.objects.get(owner=alice, original_name="plain wall.png")
    services.analysis_run(analysis_id=second.pk)
    WebDriverWait(browser, 20).until(lambda driver: badges(driver)[1] == "No face found")
    assert badges(browser)[0] == first.verdict_label
    assert wall_item.find_element(By.CSS_SELECTOR, ".upload-detail").text == ""  # no face, no probability
    assert browser.execute_script("return window.notReloaded === true;"), "the page was reloaded"


def test_an_oversize_file_is_refused_in_the_browser_and_never_sent(
    browser, live_server, site
):
    with override_settings(DETECTION_MAX_UPLOAD_BYTES=20 * 1024):
        alice = signed_in(browser, live_server)
        big = written(site, "big.jpg", astronaut_jpeg() + b"\0" * (64 * 1024))

        browser.find_element(By.ID, "id_file").send_keys(big)

        item = WebDriverWait(browser, 10).until(
            EC.presence_of_element_located((By.CSS_SELECTOR, "#upload-list .upload-refused"))
        )
    assert "the limit is 20 KB), so it was not sent." in item.text
    assert not Analysis.objects.filter(owner=alice).exists()
    assert not item.find_elements(By.CSS_SELECTOR, "a.upload-result")


def test_a_person_cancels_an_upload_and_nothing_is_kept(browser, live_server, site):
    alice = signed_in(browser, live_server)
    slow_uploads(browser, 8 * 1024)
    photo = written(site, "slow.jpg", astronaut_jpeg() * 10)

    browser.find_element(By.ID, "id_file").send_keys(photo)
    WebDriverWait(browser, 10, poll_frequency=0.05).until(first_bar_partly_filled)
    browser.find_element(By.CSS_SELECTOR, "#upload-list .upload-cancel").send_keys(Keys.ENTER)

    item = WebDriverWait(browser, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "#upload-list .upload-cancelled"))
    )
    assert "Cancelled" in item.text
    # the keyboard focus stays on the row, not thrown back to the top of the page
    assert browser.switch_to.active_element == item.find_element(By.CSS_SELECTOR, ".upload-state")
    assert browser.find_element(By.CSS_SELECTOR, "#upload-announce p:last-child").get_attribute("textContent") == "slow.jpg: Cancelled"
    assert not item.find_elements(By.CSS_SELECTOR, "a.upload-result")
    assert not Analysis.objects.filter(owner=alice).exists()


def test_the_drop_zone_is_reached_with_the_keyboard_and_shows_its_focus(browser, live_server, site):
    signed_in(browser, live_server)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(20):
        if browser.switch_to.active_element.get_attribute("id") == "id_file":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "id_file"
    assert "focused" in browser.find_element(By.ID, "dropzone").get_attribute("class")
