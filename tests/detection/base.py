"""The cast and the media every Django test uses.

alice and bob each have an account and an API token; bob also has an analysis of his own.
The anonymous visitor is `self.client` before any login. Tasks run inline (django-q2's sync
mode, patched per test) and uploads go to a temporary folder.
"""

from __future__ import annotations

import errno
import functools
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase, override_settings
from django_q.conf import Conf

from accounts.services import api_token_create, user_create
from detection.models import Analysis, AnalysisFace, AnalysisFrame, AnalysisTrack
from tests.media import astronaut_bgr, video_bytes, write_h264_with_b_frames

PASSWORD = "correct horse battery staple"
# Above Linux's largest process id (2**22), so no process can have it.
DEAD_PID = 2**22 + 1


@functools.cache
def astronaut_jpeg() -> bytes:
    """The astronaut, 256 px, as a JPEG upload."""
    ok, encoded = cv2.imencode(".jpg", astronaut_bgr(256), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


@functools.cache
def astronaut_mp4(frames: int = 10) -> bytes:
    """A short mp4v video of the astronaut (256 px) drifting a few pixels per frame."""
    image = astronaut_bgr(256)
    return video_bytes([np.roll(image, 2 * i, axis=1) for i in range(frames)])


def photo_upload(name: str = "astronaut.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, astronaut_jpeg(), content_type="image/jpeg")


def video_upload(name: str = "astronaut.mp4") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, astronaut_mp4(), content_type="video/mp4")


def online_video_upload(name: str = "clip.mp4", frames: int = 40) -> SimpleUploadedFile:
    """An H.264 video with B-frames, as most video found online is (read through PyAV)."""
    image = astronaut_bgr(256)
    with tempfile.TemporaryDirectory() as folder:
        path = write_h264_with_b_frames(Path(folder) / name, [np.roll(image, 2 * i, axis=1) for i in range(frames)])
        return SimpleUploadedFile(name, path.read_bytes(), content_type="video/mp4")


def heic_upload(name: str = "IMG_0001.HEIC") -> SimpleUploadedFile:
    """The start of an iPhone photo: an ISO base media `ftyp` box with the heic brand."""
    head = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    return SimpleUploadedFile(name, head + bytes(500), content_type="image/heic")


def text_upload(name: str = "notes.jpg") -> SimpleUploadedFile:
    """A text file that claims to be a photo by its name and content type."""
    return SimpleUploadedFile(name, b"just some words, not a picture\n" * 8, content_type="image/jpeg")


class DiskFullStorage(FileSystemStorage):
    """A local storage whose disk fills up half-way through writing any file whose name
    contains `fail_on`: the partial file stays on disk and OSError(ENOSPC) is raised, as on
    a real full disk."""

    def __init__(self, *args, fail_on: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fail_on = fail_on

    def _save(self, name, content):
        if self.fail_on not in name:
            return super()._save(name, content)
        path = Path(self.path(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        content.seek(0)
        data = content.read()
        path.write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")


def disk_full(media_root: Path, *, fail_on: str = "") -> override_settings:
    """Make the default storage a DiskFullStorage over `media_root`."""
    return override_settings(
        STORAGES={
            **settings.STORAGES,
            "default": {
                "BACKEND": "tests.detection.base.DiskFullStorage",
                "OPTIONS": {"location": str(media_root), "fail_on": fail_on},
            },
        }
    )


def throttle_rates(**rates: str) -> override_settings:
    """Override some of the API's throttle rates, e.g. throttle_rates(uploads="2/minute")."""
    current = settings.REST_FRAMEWORK
    return override_settings(
        REST_FRAMEWORK={
            **current,
            "DEFAULT_THROTTLE_RATES": {**current["DEFAULT_THROTTLE_RATES"], **rates},
        }
    )


class BaseTestCase(TestCase):
    @pytest.fixture(autouse=True)
    def _isolated_media_and_inline_tasks(self, monkeypatch):
        media = tempfile.mkdtemp(prefix="media-")
        self.media_root = Path(media)
        fast_hashing = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        with override_settings(MEDIA_ROOT=media, PASSWORD_HASHERS=fast_hashing):
            monkeypatch.setattr(Conf, "SYNC", True)
            yield
        shutil.rmtree(media, ignore_errors=True)

    def setUp(self) -> None:
        super().setUp()
        cache.clear()  # throttle history
        self.alice = user_create(username="alice", email="alice@example.org", password=PASSWORD)
        self.bob = user_create(username="bob", email="bob@example.org", password=PASSWORD)
        self.alice_key = api_token_create(user=self.alice, name="alice's script")[1]
        self.bob_key = api_token_create(user=self.bob, name="bob's script")[1]
        self.bobs_analysis = self.analysis_for(self.bob, original_name="bob.jpg")

    def analysis_for(self, owner, *, content: bytes | None = None, **fields) -> Analysis:
        """A stored analysis (queued unless `fields` say otherwise) with a real file."""
        content = astronaut_jpeg() if content is None else content
        fields.setdefault("original_name", "photo.jpg")
        fields.setdefault("media_type", Analysis.MediaType.IMAGE)
        fields.setdefault("sha256", "0" * 64)
        analysis = Analysis(owner=owner, size=len(content), **fields)
        analysis.file.save(fields["original_name"], ContentFile(content), save=False)
        analysis.save()
        return analysis

    def done_analysis_for(self, owner, **fields) -> Analysis:
        """A finished analysis of a photo with one face, its heatmap, the photo's web-sized
        image and a thumbnail."""
        fields = {
            "status": Analysis.Status.DONE,
            "verdict": Analysis.Verdict.FAKE,
            "fake_kind": "face_swap",
            "synthetic_probability": 0.02,
            "synthetic_threshold": 0.7,
            "synthetic_model_version": "s1",
            "fake_probability": 0.91,
            "threshold": 0.5,
            "model_name": "test-model",
            "model_version": "1",
            "width": 256,
            "height": 256,
            "duration": 0.0,
            "frame_count": 1,
            "frames_analysed": 1,
            "faces_count": 1,
            "progress": 1.0,
            "timings": {"decode": 0.01, "faces": 0.02},
            **fields,
        }
        analysis = self.analysis_for(owner, **fields)
        analysis.thumbnail.save("thumbnail.jpg", ContentFile(astronaut_jpeg()))
        frame = AnalysisFrame(analysis=analysis, index=0, time=0.0, fake_probability=0.91)
        frame.image.save("0.jpg", ContentFile(astronaut_jpeg()))
        face = AnalysisFace(frame=frame, index=0, x=80, y=40, w=100, h=100, fake_probability=0.91, track=1, synthetic_probability=0.02)
        face.heatmap.save("0-0.png", ContentFile(b"\x89PNG\r\n\x1a\nheatmap"), save=False)
        face.save()
        AnalysisTrack.objects.create(
            analysis=analysis, number=1, fake_probability=0.91, frames=1, first_time=0.0, last_time=0.0, counted=True,
            synthetic_probability=0.02,
        )
        return analysis

    def login(self, user) -> None:
        self.client.force_login(user)

    def stored_files(self) -> list[Path]:
        return sorted(p for p in self.media_root.rglob("*") if p.is_file())

    def stored_folders(self) -> list[Path]:
        return sorted(p for p in self.media_root.rglob("*") if p.is_dir())


class PipelineTestCase(BaseTestCase):
    """Tests that run the real `ml` detector inside the (inline) worker."""

    @pytest.fixture(autouse=True)
    def _real_detector(self, detector_checkpoint):
        with override_settings(DEEPFAKE_MODEL_PATH=str(detector_checkpoint)):
            yield
