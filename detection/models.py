"""An uploaded photo or video, its analysis status and its results per frame and per face."""

from __future__ import annotations

import unicodedata
import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.utils import timezone


def analysis_file_path(analysis: Analysis, filename: str) -> str:
    return f"analyses/{analysis.pk.hex}/{PurePosixPath(filename).name}"


def face_heatmap_path(face: AnalysisFace, filename: str) -> str:
    return f"analyses/{face.frame.analysis_id.hex}/heatmaps/{PurePosixPath(filename).name}"


def frame_image_path(frame: AnalysisFrame, filename: str) -> str:
    return f"analyses/{frame.analysis_id.hex}/frames/{PurePosixPath(filename).name}"


def thumbnail_path(analysis: Analysis, filename: str) -> str:
    return f"analyses/{analysis.pk.hex}/{PurePosixPath(filename).name}"


def name_folded(text: str) -> str:
    """`text` as a search compares it: case folded for every script (a database's own case-blind
    LIKE folds only A-Z on SQLite) and in one Unicode form (an accented name typed on one system
    and saved on another may use either). NFKC first: it can turn letters into capitals ("ᴴ" ->
    "H"), which the case folding after it then folds."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFKC", text).casefold())


class Analysis(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Verdict(models.TextChoices):
        # The values are ml.results.VERDICTS (pinned by tests/detection/test_models.py).
        REAL = "real", "Real"
        UNCERTAIN = "uncertain", "Uncertain"
        FAKE = "fake", "Fake"
        NO_FACE = "no_face", "No face found"

    class MediaType(models.TextChoices):
        IMAGE = "image", "Photo"
        VIDEO = "video", "Video"

    FINISHED = (Status.DONE, Status.FAILED)

    # Random ids: a URL reveals nothing about how many analyses exist or whose they are.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="analyses"
    )
    file = models.FileField(upload_to=analysis_file_path, max_length=300)
    original_name = models.CharField(max_length=255)
    # original_name as the history's search compares it (name_folded), kept by save()
    name_folded = models.TextField(blank=True, editable=False)
    media_type = models.CharField(max_length=8, choices=MediaType.choices)
    size = models.PositiveBigIntegerField(help_text="Bytes")
    sha256 = models.CharField(max_length=64, db_index=True)

    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0, help_text="0 to 1")
    error = models.TextField(blank=True)
    # failed because the file itself could not be read (damaged, cut short, an unknown codec):
    # running it again would fail the same way, so the page offers no retry
    file_unreadable = models.BooleanField(default=False)
    worker = models.CharField(
        max_length=200, blank=True, help_text="host:pid of the worker that ran the job"
    )
    # The queue message that may run this analysis: each (re-)enqueue sends a new token and a
    # message carrying an older one is skipped, so a job is never run twice.
    queue_token = models.CharField(max_length=32, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    enqueue_count = models.PositiveSmallIntegerField(
        default=0, help_text="Messages sent to the queue for it (more than 1: re-queued)"
    )

    verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    fake_probability = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True, help_text="At or above: fake")
    threshold_real = models.FloatField(
        null=True, blank=True, help_text="Below: real; from here to the threshold: uncertain"
    )
    fake_kind = models.CharField(
        max_length=16,
        blank=True,
        help_text="For a fake verdict: face_swap or ai_generated (the values of ml.results.FAKE_KINDS)",
    )
    uncertain_reason = models.CharField(
        max_length=24,
        blank=True,
        help_text=(
            "Why a verdict is uncertain though its score would say more: few_frames, "
            "fake_moments, ai_generated_video or ai_generated_hint (ml.results.UNCERTAIN_REASONS; "
            "ml/caution.py); empty where the score decided"
        ),
    )
    synthetic_probability = models.FloatField(
        null=True, blank=True, help_text="Probability that a face was wholly generated (second detector)"
    )
    synthetic_threshold = models.FloatField(
        null=True, blank=True, help_text="At or above: fake, AI-generated face"
    )
    synthetic_model_version = models.CharField(max_length=100, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds (0 for an image)")
    frame_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="Frames in the whole file"
    )
    frames_analysed = models.PositiveIntegerField(default=0)
    faces_count = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per stage")
    thumbnail = models.FileField(
        upload_to=thumbnail_path, max_length=300, blank=True, help_text="Small JPEG for the history"
    )

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "analyses"
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def save(self, *args, **kwargs):
        self.name_folded = name_folded(self.original_name)
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def is_ai_generated(self) -> bool:
        return self.verdict == self.Verdict.FAKE and self.fake_kind == "ai_generated"

    @property
    def stands_on_ai_check(self) -> bool:
        """Whether the verdict rests on the AI-generated-face model: it called the file
        AI-generated, or its call (on a video) or its half-way score held the verdict at
        uncertain (ml/caution.py)."""
        return self.is_ai_generated or self.uncertain_reason in ("ai_generated_video", "ai_generated_hint")

    # A verdict this close to the threshold it passed can change with the copy: in this project's
    # tests (2026-11-27, the 31 videos of ../shared/data re-saved, mirrored, cropped, with black
    # bars, a news banner or more compression), a DFDC fake at 86.9 % against an 86.4 %
    # threshold fell to uncertain in 9 of 10 such copies, and a real clip went from 69.0 % to
    # 85.1 % on a plain re-save (and to 89.4 %, "fake", cropped to 80 %).
    NEAR_THRESHOLD = 0.05

    @property
    def is_borderline(self) -> bool:
        """A face-swap "fake" or a "real" within NEAR_THRESHOLD of the threshold it passed."""
        score, threshold = self.fake_probability, self.threshold
        if score is None or threshold is None or self.is_ai_generated:
            return False
        real_below = self.threshold_real if self.threshold_real is not None else threshold
        if self.verdict == self.Verdict.FAKE:
            return score - threshold < self.NEAR_THRESHOLD
        return self.verdict == self.Verdict.REAL and real_below - score <= self.NEAR_THRESHOLD

    @property
    def verdict_label(self) -> str:
        """The verdict as people read it, with the kind of fake: "Fake: face swap", and
        "(borderline)" where another copy may fall on the other side of the threshold."""
        if self.is_borderline:
            return f"{'Fake: face swap' if self.verdict == self.Verdict.FAKE else 'Real'} (borderline)"
        if self.verdict == self.Verdict.FAKE and self.fake_kind == "face_swap":
            return "Fake: face swap"
        if self.is_ai_generated:
            return "Fake: AI-generated face"
        if self.verdict == self.Verdict.UNCERTAIN and self.uncertain_reason in self.HELD_LABELS:
            return self.HELD_LABELS[self.uncertain_reason]
        return self.get_verdict_display()

    # A video held at uncertain (ml/caution.py), as badges name it: the reason in a few words,
    # so a history row does not read "Uncertain" beside a high probability with nothing else.
    HELD_LABELS = {
        "few_frames": "Uncertain: face seen briefly",
        "fake_moments": "Uncertain: fake-looking moments",
        "ai_generated_video": "Uncertain: AI-generated?",
        "ai_generated_hint": "Uncertain: AI-generated?",
    }

    @property
    def probability_label(self) -> str:
        """What `verdict_probability` measures, in a word or two."""
        return "AI-generated" if self.stands_on_ai_check else "fake"

    @property
    def verdict_probability(self) -> float | None:
        """The probability the verdict stands on, shown beside it: the AI-generated probability
        when a face was found to be AI-generated (its face-swap probability is then usually
        near 0, and a red "fake" beside "0.0 %" reads as a contradiction), else the face-swap
        probability."""
        return self.synthetic_probability if self.stands_on_ai_check else self.fake_probability


class AnalysisFrame(models.Model):
    """One sampled frame; a photo has a single frame with index 0 at time 0."""

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="frames")
    index = models.PositiveIntegerField(help_text="Frame number in the file")
    time = models.FloatField(help_text="Seconds from the start")
    fake_probability = models.FloatField(
        null=True, blank=True, help_text="The frame's most suspicious face; empty without faces"
    )
    faces_left_out = models.PositiveIntegerField(
        default=0, help_text="Confirmed faces beyond the per-frame limit, not scored"
    )
    boxes_rejected = models.PositiveIntegerField(
        default=0, help_text="Face-finder boxes not confirmed as faces, or too blurred to judge: not scored"
    )
    image = models.FileField(
        upload_to=frame_image_path, max_length=300, blank=True, help_text="Web-sized JPEG of the frame"
    )

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["analysis", "index"], name="unique_frame_index")
        ]

    def __str__(self) -> str:
        return f"frame {self.index} at {self.time:.2f}s"


class AnalysisFace(models.Model):
    frame = models.ForeignKey(AnalysisFrame, on_delete=models.CASCADE, related_name="faces")
    index = models.PositiveIntegerField(help_text="Face number within its frame")
    x = models.IntegerField()
    y = models.IntegerField()
    w = models.PositiveIntegerField()
    h = models.PositiveIntegerField()
    fake_probability = models.FloatField()
    track = models.PositiveIntegerField(default=0, help_text="The person (face track) number, from 1")
    synthetic_probability = models.FloatField(null=True, blank=True, help_text="Wholly generated face (empty: not scored; up to 4 faces per person are)")
    heatmap = models.FileField(
        upload_to=face_heatmap_path,
        max_length=300,
        blank=True,
        help_text="Grad-CAM overlay (PNG) for the most suspicious faces",
    )
    crop = models.JSONField(
        null=True,
        blank=True,
        help_text="[x, y, w, h] of the region the model saw, which the heatmap covers (empty: not recorded)",
    )
    crop_angle = models.FloatField(
        default=0.0,
        help_text=(
            "For a tilted face (found on a turned copy of the frame): the degrees counter-clockwise "
            "the frame is turned about the crop's centre for the model to see the crop upright; 0 otherwise"
        ),
    )
    heatmap_focus = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="Where the heatmap is brightest, in words (empty: no heatmap, or made before this was recorded)",
    )

    class Meta:
        ordering = ["frame__index", "index"]
        constraints = [
            models.UniqueConstraint(fields=["frame", "index"], name="unique_face_index")
        ]

    def __str__(self) -> str:
        return f"face {self.index} of {self.frame}"

    @property
    def box(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


class AnalysisTrack(models.Model):
    """One person: faces linked across the sampled frames, scored as the mean of its faces."""

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="tracks")
    number = models.PositiveIntegerField(help_text="Track number, from 1, as on the faces")
    fake_probability = models.FloatField()
    frames = models.PositiveIntegerField(help_text="Sampled frames the person appears in")
    first_time = models.FloatField()
    last_time = models.FloatField()
    counted = models.BooleanField(help_text="Long enough to decide the verdict")
    synthetic_probability = models.FloatField(
        null=True, blank=True, help_text="The lowest over its scored faces (one frame's score is unsteady; ml/tracks.py)"
    )

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["analysis", "number"], name="unique_track_number")
        ]

    def __str__(self) -> str:
        return f"person {self.number} of {self.analysis_id}"


class QueueKey(models.Model):
    """A fingerprint of the key the site signs queue messages with (HMAC, never the key).

    A worker whose own key gives another fingerprint could not read a single message; it
    refuses to start instead of silently dropping every task.
    """

    fingerprint = models.CharField(max_length=64)
    recorded_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.CharField(max_length=200, help_text="host:pid of the web process")

    class Meta:
        verbose_name = "queue signing key fingerprint"

    def __str__(self) -> str:
        return f"{self.fingerprint[:12]}... from {self.recorded_by}"
