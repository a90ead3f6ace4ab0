"""Every page a signed-in person uses fits a 390 px wide phone screen: no sideways scrolling,
even with a long file name and the API token."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from accounts.services import user_create
from detection.models import Analysis
from tests.browser import PHONE, log_in, resize, screenshot

from .base import PASSWORD, astronaut_jpeg

pytestmark = pytest.mark.django_db(transaction=True)

LONG_NAME = "a-very-long-file-name-without-any-spaces-from-a-phone-camera-20261125-235959.jpg"


def test_the_pages_fit_a_phone_screen(browser, live_server):
    media = tempfile.mkdtemp(prefix="media-")
    try:
        with override_settings(MEDIA_ROOT=media):
            alice = user_create(username="alice", email="alice@example.org", password=PASSWORD)
            analysis = Analysis(
                owner=alice, original_name=LONG_NAME, media_type="image", size=1, sha256="0" * 64,
                status="failed", error="The file could not be decoded.",
            )
            analysis.file.save("photo.jpg", ContentFile(astronaut_jpeg()), save=False)
            analysis.save()
            for reason, verdict, score in (("fake_moments", "uncertain", 0.40), ("", "fake", 0.87)):  # the longest badges
                held = Analysis(
                    owner=alice, original_name="clip.mp4", media_type="video", size=1, sha256="1" * 64,
                    status="done", verdict=verdict, fake_kind="face_swap" if verdict == "fake" else "",
                    uncertain_reason=reason, fake_probability=score, threshold=0.864, threshold_real=0.437,
                )
                held.file.save("clip.mp4", ContentFile(b"not needed"), save=False)
                held.save()

            log_in(browser, live_server.url, username="alice", password=PASSWORD)
            WebDriverWait(browser, 10).until(EC.url_contains("/upload/"))
            resize(browser, PHONE)
            for name, path in [
                ("upload", "/upload/"),
                ("history", "/analyses/"),
                ("detail", f"/analyses/{analysis.pk}/"),
                ("profile", "/accounts/profile/"),
                ("model-card", "/model-card/"),
            ]:
                browser.get(live_server.url + path)
                WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.TAG_NAME, "main")))
                width = browser.execute_script("return document.documentElement.scrollWidth")
                screenshot(browser, f"phone-{name}")
                assert width <= PHONE[0], f"{path} is {width} px wide"
    finally:
        shutil.rmtree(media, ignore_errors=True)
