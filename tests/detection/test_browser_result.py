"""Browser journeys on the result page: the verdict and the face boxes over the photo, the
timeline of a video with two people, the JSON download, the printable report, and images that
nobody else can open. Screenshots go to out/screenshots/result-*.png."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django_q.conf import Conf
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from accounts.services import user_create
from detection import services
from detection.models import Analysis
from tests.browser import DESKTOP, PHONE, SCREENSHOTS, log_in, resize, screenshot

from tests.media import astronaut_bgr, video_bytes

from .base import PASSWORD, astronaut_jpeg

pytestmark = pytest.mark.django_db(transaction=True)

VERDICT_BADGE = "#verdict [data-badge]"
SHOWN_BOXES = "#faces .frame-boxes:not(.is-hidden) rect.box"


@pytest.fixture
def site(monkeypatch, detector_checkpoint):
    """Uploads go to a temporary folder and are analysed inline by the real detector."""
    media = tempfile.mkdtemp(prefix="media-")
    monkeypatch.setattr(Conf, "SYNC", True)
    with override_settings(
        MEDIA_ROOT=media,
        DEEPFAKE_MODEL_PATH=str(detector_checkpoint),
        DETECTION_MAX_FRAMES=8,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    ):
        yield
    shutil.rmtree(media, ignore_errors=True)


def two_people_mp4(frames: int = 16) -> bytes:
    """Two astronauts side by side (one mirrored), the camera panning right 4 px a frame."""
    image = astronaut_bgr(256)
    pair = np.concatenate([image, cv2.flip(image, 1)], axis=1)
    width = 448
    return video_bytes([np.ascontiguousarray(pair[:, 4 * i : 4 * i + width]) for i in range(frames)])


def uploaded(owner, name: str, content: bytes, content_type: str) -> Analysis:
    analysis = services.analysis_create(
        owner=owner, file=SimpleUploadedFile(name, content, content_type=content_type)
    )
    analysis.refresh_from_db()
    assert analysis.status == Analysis.Status.DONE, analysis.error
    return analysis


def signed_in(browser, live_server, username: str = "alice"):
    user = user_create(username=username, email=f"{username}@example.org", password=PASSWORD)
    log_in(browser, live_server.url, username=username, password=PASSWORD)
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "dropzone")))
    return user


def fetch(browser, url: str) -> dict:
    """GET `url` from the page with its cookies: {"status": ..., "text": ...}."""
    return browser.execute_async_script(
        """
        var done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: "same-origin"})
          .then(function (r) { return r.text().then(function (t) { done({status: r.status, text: t}); }); })
          .catch(function (e) { done({status: 0, text: String(e)}); });
        """,
        url,
    )


def inside(inner, outer, slack: float = 2.0) -> bool:
    return (
        inner["x"] >= outer["x"] - slack
        and inner["y"] >= outer["y"] - slack
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack
    )


def rect_of(browser, element) -> dict:
    return browser.execute_script("var r = arguments[0].getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height};", element)


def both_sizes(browser, name: str) -> None:
    browser.execute_script("document.activeElement && document.activeElement.blur();")
    resize(browser, DESKTOP)
    screenshot(browser, f"{name}-1400")
    resize(browser, PHONE)
    screenshot(browser, f"{name}-390")
    resize(browser, DESKTOP)


def test_a_photo_fills_in_without_a_reload_with_its_badge_and_one_box_over_the_face(
    browser, live_server, site, monkeypatch
):
    alice = signed_in(browser, live_server)
    monkeypatch.setattr(Conf, "SYNC", False)  # queued, nobody runs it yet
    analysis = services.analysis_create(
        owner=alice, file=SimpleUploadedFile("astronaut.jpg", astronaut_jpeg(), content_type="image/jpeg")
    )
    browser.get(f"{live_server.url}/analyses/{analysis.pk}/")
    stage = browser.find_element(By.ID, "stage-label")
    assert "Waiting in the queue: number 1" in stage.text
    assert stage.get_attribute("aria-live") == "polite"
    browser.execute_script("window.notReloaded = true;")
    resize(browser, PHONE)
    screenshot(browser, "result-queued-390")
    resize(browser, DESKTOP)

    services.analysis_run(analysis_id=analysis.pk)

    badge = WebDriverWait(browser, 20).until(EC.visibility_of_element_located((By.CSS_SELECTOR, VERDICT_BADGE)))
    assert browser.execute_script("return window.notReloaded === true;"), "the page was reloaded"
    assert badge.text in {"Real", "Uncertain", "Fake", "No face found"}
    assert "The analysis is finished" in browser.find_element(By.ID, "announce").get_attribute("textContent")
    assert browser.find_element(By.ID, "verdict-sentence").text
    # came with the result, behind a confirmation
    assert browser.find_element(By.CSS_SELECTOR, "#rerun-details summary").text == "Analyse again…"
    assert not browser.find_element(By.ID, "rerun").is_displayed()

    image = browser.find_element(By.ID, "picture-image")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", image))
    boxes = browser.find_elements(By.CSS_SELECTOR, SHOWN_BOXES)
    assert len(boxes) == 1
    box, photo = rect_of(browser, boxes[0]), rect_of(browser, image)
    assert inside(box, photo)
    # The astronaut's face is in the upper middle of the photo.
    centre_x = (box["x"] + box["width"] / 2 - photo["x"]) / photo["width"]
    centre_y = (box["y"] + box["height"] / 2 - photo["y"]) / photo["height"]
    assert 0.25 < centre_x < 0.75 and 0.05 < centre_y < 0.65, (centre_x, centre_y)
    assert "P1" in browser.find_element(By.CSS_SELECTOR, "#faces .frame-boxes:not(.is-hidden) text").text
    assert browser.find_elements(By.CSS_SELECTOR, "#heatmaps .heatmap-image")
    both_sizes(browser, "result-photo")


def test_a_video_has_a_timeline_whose_points_show_their_frame_and_boxes(
    browser, live_server, site
):
    alice = signed_in(browser, live_server)
    analysis = uploaded(alice, "two people.mp4", two_people_mp4(), "video/mp4")
    frames = {frame.index: frame.faces.count() for frame in analysis.frames.all()}
    assert max(frames.values()) == 2, frames

    browser.get(f"{live_server.url}/analyses/{analysis.pk}/")
    timeline = WebDriverWait(browser, 10).until(EC.visibility_of_element_located((By.ID, "timeline")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline polyline.track-line")) >= 2
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline .band-fake")
    assert not browser.find_element(By.ID, "frames-details").get_attribute("open")

    hits = browser.find_elements(By.CSS_SELECTOR, "#timeline .hit")
    assert len(hits) == len(frames)
    shown = browser.find_element(By.CSS_SELECTOR, "#faces .frame-boxes:not(.is-hidden)").get_attribute("data-frame")
    target = next(hit for hit in hits if hit.get_attribute("data-frame") != shown)
    ActionChains(browser).move_to_element(target).click().perform()

    index = int(target.get_attribute("data-frame"))
    group = browser.find_element(By.CSS_SELECTOR, "#faces .frame-boxes:not(.is-hidden)")
    assert group.get_attribute("data-frame") == str(index)
    assert browser.find_element(By.ID, "picture-image").get_attribute("src").endswith(f"/frames/{index}.jpg")
    assert len(browser.find_elements(By.CSS_SELECTOR, SHOWN_BOXES)) == frames[index]
    assert f"Frame {index} at" in browser.find_element(By.ID, "picture-caption").text

    # Moving the mouse away keeps the chosen frame; the arrow keys step to the next one.
    ActionChains(browser).move_to_element(browser.find_element(By.TAG_NAME, "h1")).perform()
    assert browser.find_element(By.CSS_SELECTOR, "#faces .frame-boxes:not(.is-hidden)").get_attribute("data-frame") == str(index)
    order = [int(hit.get_attribute("data-frame")) for hit in hits]
    timeline.send_keys(Keys.ARROW_RIGHT if order.index(index) + 1 < len(order) else Keys.ARROW_LEFT)
    stepped = browser.find_element(By.CSS_SELECTOR, "#faces .frame-boxes:not(.is-hidden)").get_attribute("data-frame")
    assert abs(order.index(int(stepped)) - order.index(index)) == 1
    assert "Frame" in timeline.get_attribute("aria-valuetext")

    # With the picture scrolled away, a small copy of the frame floats beside the chart.
    preview = browser.find_element(By.ID, "timeline-preview")
    assert not preview.is_displayed()  # the picture is on screen
    browser.execute_script("window.scrollTo(0, arguments[0].getBoundingClientRect().top + window.scrollY - 40);", timeline)
    WebDriverWait(browser, 5).until(lambda driver: preview.is_displayed())
    now = browser.find_element(By.CSS_SELECTOR, "#faces .frame-boxes:not(.is-hidden)").get_attribute("data-frame")
    assert preview.find_element(By.TAG_NAME, "img").get_attribute("src").endswith(f"/frames/{now}.jpg")
    browser.execute_script("window.scrollTo(0, 0);")
    WebDriverWait(browser, 5).until(lambda driver: not preview.is_displayed())

    # Put the most suspicious frame back for the screenshots.
    timeline.send_keys(Keys.HOME)
    both_sizes(browser, "result-video")


def test_the_json_download_matches_the_api_and_the_report_names_the_file_and_model(
    browser, live_server, site
):
    alice = signed_in(browser, live_server)
    analysis = uploaded(alice, "two people.mp4", two_people_mp4(), "video/mp4")
    browser.get(f"{live_server.url}/analyses/{analysis.pk}/")

    link = browser.find_element(By.ID, "json-link")
    download = fetch(browser, link.get_attribute("href"))
    api = fetch(browser, f"{live_server.url}/api/v1/analyses/{analysis.pk}/")
    assert download["status"] == api["status"] == 200
    assert json.loads(download["text"]) == json.loads(api["text"])
    assert json.loads(download["text"])["sha256"] == analysis.sha256

    browser.find_element(By.ID, "report-link").click()
    report = WebDriverWait(browser, 10).until(EC.visibility_of_element_located((By.ID, "report")))
    assert analysis.sha256 in report.text
    assert analysis.model_version in browser.find_element(By.CSS_SELECTOR, "#report .model-version").text
    assert "two people.mp4" in report.text
    assert browser.find_elements(By.CSS_SELECTOR, "#report #timeline")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#report .frame-boxes")) == 1
    both_sizes(browser, "result-report")
    browser.find_element(By.PARTIAL_LINK_TEXT, "known limits").click()
    limits = WebDriverWait(browser, 10).until(EC.visibility_of_element_located((By.ID, "in-plain-words")))
    assert "Known limits, in short" in limits.text
    screenshot(browser, "model-card-1400")
    browser.back()
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    resize(browser, (688, 1017))  # A4 inside the report's 14 mm margins, at 96 dpi
    screenshot(browser, "result-report-print")
    pdf = browser.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True, "printBackground": True})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "result-report.pdf").write_bytes(base64.b64decode(pdf["data"]))


def test_another_user_gets_404_for_every_image_on_the_page(browser, live_server, site):
    alice = signed_in(browser, live_server)
    analysis = uploaded(alice, "astronaut.jpg", astronaut_jpeg(), "image/jpeg")
    browser.get(f"{live_server.url}/analyses/{analysis.pk}/")
    urls = browser.execute_script(
        """
        var urls = [];
        document.querySelectorAll("#result img").forEach(function (img) { urls.push(img.src); });
        document.querySelectorAll("#result image").forEach(function (img) { urls.push(new URL(img.getAttribute("href"), location.href).href); });
        document.querySelectorAll("#result [data-image]").forEach(function (g) { if (g.dataset.image) urls.push(new URL(g.dataset.image, location.href).href); });
        return urls;
        """
    )
    urls.append(f"{live_server.url}/analyses/{analysis.pk}/thumbnail.jpg")
    assert any("/heatmaps/" in url for url in urls) and any("/frames/" in url for url in urls)
    for url in urls:
        assert fetch(browser, url)["status"] == 200, url

    browser.delete_all_cookies()
    user_create(username="bob", email="bob@example.org", password=PASSWORD)
    log_in(browser, live_server.url, username="bob", password=PASSWORD)
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.ID, "dropzone")))
    for url in set(urls):
        assert fetch(browser, url)["status"] == 404, url


def group_photo_analysis(owner, *, people: int = 6) -> Analysis:
    """A finished analysis of a 1920x1080 group photo whose faces stand in a row, 90 px wide and
    30 px apart, as the ORM stores one: on a phone each face is about 16 px wide on screen,
    narrower than its label."""
    from django.core.files.base import ContentFile

    from detection.models import AnalysisFace, AnalysisFrame, AnalysisTrack

    picture = cv2.resize(astronaut_bgr(512), (1920, 1080))
    jpeg = cv2.imencode(".jpg", picture)[1].tobytes()
    analysis = Analysis(
        owner=owner, original_name="group.jpg", media_type="image", size=len(jpeg), sha256="1" * 64,
        status="done", verdict="real", fake_probability=0.2, threshold=0.5, model_name="test-model",
        model_version="1", width=1920, height=1080, duration=0.0, frame_count=1, frames_analysed=1,
        faces_count=people, progress=1.0,
    )
    analysis.file.save("group.jpg", ContentFile(jpeg), save=False)
    analysis.save()
    frame = AnalysisFrame(analysis=analysis, index=0, time=0.0, fake_probability=0.2)
    frame.image.save("0.jpg", ContentFile(jpeg))
    for k in range(people):
        AnalysisFace.objects.create(frame=frame, index=k, x=400 + 120 * k, y=500, w=90, h=90, fake_probability=0.1 + 0.05 * k, track=k + 1)
        AnalysisTrack.objects.create(analysis=analysis, number=k + 1, fake_probability=0.1 + 0.05 * k, frames=1, first_time=0.0, last_time=0.0, counted=True)
    return analysis


def shown_labels(browser) -> list[dict]:
    """Each box on the picture, with its label's place and text if the label is shown."""
    return browser.execute_script(
        """
        var out = [];
        document.querySelectorAll("#faces .frame-boxes:not(.is-hidden) rect.box").forEach(function (box) {
          var bg = box.nextElementSibling, text = bg.nextElementSibling;
          var rect = function (e) { var r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; };
          var shown = getComputedStyle(text).display !== "none";
          out.push({box: rect(box), label: shown ? rect(bg) : null, text: shown ? text.textContent : null});
        });
        return out;
        """
    )


def apart(a: dict, b: dict) -> bool:
    return a["x"] + a["width"] <= b["x"] + 0.5 or b["x"] + b["width"] <= a["x"] + 0.5 or a["y"] + a["height"] <= b["y"] + 0.5 or b["y"] + b["height"] <= a["y"] + 0.5


def test_on_a_phone_the_labels_of_faces_side_by_side_cover_no_other_face_or_label(browser, live_server, site):
    alice = signed_in(browser, live_server)
    analysis = group_photo_analysis(alice)
    browser.get(f"{live_server.url}/analyses/{analysis.pk}/")
    image = browser.find_element(By.ID, "picture-image")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", image))

    # On a desktop, every face has its whole label: the person and the score.
    desktop = shown_labels(browser)
    assert [item["text"] for item in desktop] == [f"P{k} {10 + 5 * (k - 1)}.0%" for k in range(1, 7)]

    resize(browser, PHONE)  # the page hears of it a moment later (a resize event)
    short = [f"P{k}" for k in range(1, 7)]
    WebDriverWait(browser, 5).until(lambda d: [item["text"] for item in shown_labels(d)] == short)
    phone = shown_labels(browser)
    # whole labels would run over the next faces: each is the person's number, above or below
    assert [item["text"] for item in phone] == short, phone
    labels = [item["label"] for item in phone]
    for k, item in enumerate(phone):
        others = [other["box"] for j, other in enumerate(phone) if j != k]
        assert all(apart(item["label"], other) for other in others), (k, phone)
        assert all(apart(item["label"], other) for other in labels if other is not item["label"]), (k, phone)
    # Every face, labelled or not, is named with its score under the picture.
    caption = browser.find_element(By.ID, "picture-caption").text
    assert all(f"erson {k}: {10 + 5 * (k - 1)}.0%" in caption for k in range(1, 7)), caption
    screenshot(browser, "result-group-labels-390")

    resize(browser, DESKTOP)  # back to whole labels
    whole = [item["text"] for item in desktop]
    WebDriverWait(browser, 5).until(lambda d: [item["text"] for item in shown_labels(d)] == whole)

    # The printable report places them the same way.
    resize(browser, PHONE)
    browser.get(f"{live_server.url}/analyses/{analysis.pk}/report/")
    image = browser.find_element(By.ID, "picture-image")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", image))
    WebDriverWait(browser, 5).until(lambda d: [item["text"] for item in shown_labels(d)] == short)
    report = shown_labels(browser)
    assert [item["text"] for item in report] == [f"P{k}" for k in range(1, 7)], report
    for k, item in enumerate(report):
        assert all(apart(item["label"], other["box"]) for j, other in enumerate(report) if j != k), (k, report)
        assert all(apart(item["label"], other["label"]) for j, other in enumerate(report) if j != k), (k, report)
    resize(browser, DESKTOP)
