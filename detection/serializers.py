"""API input and output shapes. Names are unique so the OpenAPI schema stays readable.

Every field of an output shape is read-only (`read_only_fields`): drf-spectacular marks read-only
fields required in a response, and an answer carries each of its fields, null where it may be.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import selectors
from .models import Analysis, AnalysisFace, AnalysisFrame, AnalysisTrack
from .selectors import ORDERINGS

MAX_WAIT_SECONDS = 30

# Analysis.fake_kind's values besides "" (ml.results.FAKE_KINDS; this module does not import ml)
FAKE_KINDS = [("face_swap", "Face swap"), ("ai_generated", "AI-generated face")]


class AnalysisCreateInputSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A photo or a video, sent as multipart/form-data.")


class StrictQuerySerializer(serializers.Serializer):
    """Query parameters where one it does not know, or one given twice, is refused: a script
    that sent a misspelt name would otherwise be answered as if it had not sent it (`?wiat=30`
    answered at once; a list filtered by a misspelt name, or the web history's `q`, would hold
    every analysis, and the script might go on to delete them all)."""

    parameters_of = "this request"  # "Not a parameter of <this>"

    def validate(self, attrs):
        problems = self.problems(attrs)
        if problems:
            raise serializers.ValidationError(problems)
        return attrs

    def problems(self, attrs) -> dict[str, list[str]]:
        sent = self.initial_data
        known = ", ".join(self.fields)
        problems = {
            key: [f"Not a parameter of {self.parameters_of}, which takes: {known}."]
            for key in sorted(set(sent) - set(self.fields) - {"format"})  # (format: DRF's own)
        }
        return problems | {key: ["Give it once."] for key in self.fields if len(sent.getlist(key)) > 1}


class AnalysisCreateQuerySerializer(StrictQuerySerializer):
    parameters_of = "an upload or a run again"

    wait = serializers.IntegerField(
        min_value=0,
        max_value=MAX_WAIT_SECONDS,
        default=0,
        help_text=(
            "Hold the response up to this many seconds until the analysis is done or failed "
            "(201 for an upload, 200 for a rerun), instead of answering at once (202). A user's third simultaneous wait (or "
            "any wait while the server's wait slots are taken) is answered at once: poll `url`."
        ),
    )


class WholeNumberField(serializers.IntegerField):
    """An integer written in digits only: DRF's IntegerField also takes "1.0", which the
    paginator, reading the parameter again, then refuses with a 404."""

    def to_internal_value(self, data):
        if not (str(data).strip().isascii() and str(data).strip().isdigit()):
            self.fail("invalid")
        return super().to_internal_value(data)


class AnalysisListQuerySerializer(StrictQuerySerializer):
    """The list's filters."""

    parameters_of = "this list"

    status = serializers.ChoiceField(choices=Analysis.Status.choices, required=False)
    verdict = serializers.ChoiceField(choices=Analysis.Verdict.choices, required=False)
    media_type = serializers.ChoiceField(choices=Analysis.MediaType.choices, required=False)
    name = serializers.CharField(
        max_length=255, required=False, help_text="Part of the original file name, in any case."
    )
    uploaded_from = serializers.DateField(
        required=False, help_text="Uploaded on this day (YYYY-MM-DD, the site's time zone) or later."
    )
    uploaded_to = serializers.DateField(required=False, help_text="Uploaded on this day or earlier.")
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$",
        required=False,
        help_text="The SHA-256 of a file (64 hex digits): its analyses, if it was uploaded before.",
        error_messages={"invalid": "A SHA-256 digest is 64 hexadecimal digits."},
    )
    ordering = serializers.ChoiceField(
        choices=ORDERINGS, default="-created_at", help_text="By upload time, newest first by default."
    )
    page = WholeNumberField(
        min_value=1,
        required=False,
        help_text="Page number, from 1.",
        error_messages={"invalid": "A page number is a whole number from 1."},
    )

    def problems(self, attrs) -> dict[str, list[str]]:
        problems = super().problems(attrs)
        start, end = attrs.get("uploaded_from"), attrs.get("uploaded_to")
        if start and end and end < start:
            problems["uploaded_to"] = ["This day is before uploaded_from."]
        return problems


def _absolute(request, name: str, **kwargs) -> str:
    return request.build_absolute_uri(reverse(name, kwargs=kwargs))


class AnalysisFaceOutputSerializer(serializers.ModelSerializer):
    box = serializers.ListField(
        child=serializers.IntegerField(),
        min_length=4,
        max_length=4,
        read_only=True,
        help_text="[x, y, width, height] in pixels",
    )
    heatmap_url = serializers.SerializerMethodField(
        help_text="Grad-CAM overlay (PNG) for the most suspicious face of each person, then the most suspicious left (DETECTION_HEATMAPS in all), else null"
    )
    crop = serializers.ListField(
        child=serializers.IntegerField(),
        min_length=4,
        max_length=4,
        allow_null=True,
        read_only=True,
        help_text="[x, y, width, height] of the region the model saw (the box scaled and moved as the model was trained), which the heatmap covers; null if not recorded",
    )

    class Meta:
        model = AnalysisFace
        fields = [
            "id", "index", "box", "crop", "fake_probability", "synthetic_probability", "track", "heatmap_url", "heatmap_focus"
        ]
        extra_kwargs = {"heatmap_focus": {"help_text": "Where its heatmap is brightest, in words; empty without a heatmap"}}
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_heatmap_url(self, face: AnalysisFace) -> str | None:
        if not face.heatmap:
            return None
        return _absolute(
            self.context["request"],
            "detection_api:analysis-heatmap",
            analysis_id=self.context["analysis_id"],
            face_id=face.pk,
        )


class AnalysisFrameOutputSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField(
        help_text="The frame (or the photo) as a web-sized JPEG, long side at most 960 px; "
        "face boxes are in the analysed frame's pixels (the analysis' width and height)"
    )
    faces = AnalysisFaceOutputSerializer(many=True, read_only=True)

    class Meta:
        model = AnalysisFrame
        fields = [
            "index",
            "time",
            "fake_probability",
            "faces_left_out",
            "boxes_rejected",
            "image_url",
            "faces",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, frame: AnalysisFrame) -> str | None:
        if not frame.image:
            return None
        return _absolute(
            self.context["request"],
            "detection_api:analysis-frame-image",
            analysis_id=self.context["analysis_id"],
            frame_index=frame.index,
        )


class AnalysisTrackOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AnalysisTrack
        fields = ["number", "fake_probability", "synthetic_probability", "frames", "first_time", "last_time", "counted"]
        read_only_fields = fields


class AnalysisModelOutputSerializer(serializers.Serializer):
    name = serializers.CharField(source="model_name")
    version = serializers.CharField(source="model_version")


class AnalysisSummaryOutputSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This analysis in the API")
    thumbnail_url = serializers.SerializerMethodField(
        help_text="A small JPEG (long side 320 px) once the analysis is done, else null"
    )
    # Declared for the blank value, which a read-only model field's enum would lose
    verdict = serializers.ChoiceField(
        choices=Analysis.Verdict.choices,
        allow_blank=True,
        read_only=True,
        help_text="Empty unless the analysis is done",
    )
    fake_kind = serializers.ChoiceField(
        choices=FAKE_KINDS,
        allow_blank=True,
        read_only=True,
        help_text="For a fake verdict, what kind of fake; else empty",
    )

    class Meta:
        model = Analysis
        fields = [
            "id",
            "url",
            "original_name",
            "media_type",
            "size",
            "status",
            "progress",
            "verdict",
            "fake_kind",
            "fake_probability",
            "synthetic_probability",
            "sha256",
            "created_at",
            "finished_at",
            "thumbnail_url",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField())
    def get_url(self, analysis: Analysis) -> str:
        return _absolute(self.context["request"], "detection_api:analysis-detail", analysis_id=analysis.pk)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_thumbnail_url(self, analysis: Analysis) -> str | None:
        if not analysis.thumbnail:
            return None
        return _absolute(self.context["request"], "detection_api:analysis-thumbnail", analysis_id=analysis.pk)


class AnalysisDetailOutputSerializer(AnalysisSummaryOutputSerializer):
    model = AnalysisModelOutputSerializer(source="*", read_only=True)
    frames = serializers.SerializerMethodField()
    tracks = AnalysisTrackOutputSerializer(
        many=True, read_only=True, help_text="People: faces linked across frames, each with its score"
    )
    timings = serializers.DictField(
        child=serializers.FloatField(), read_only=True, help_text="Seconds spent in each stage"
    )
    file_url = serializers.SerializerMethodField(help_text="Download the original upload")
    page_url = serializers.SerializerMethodField(help_text="This analysis on the website")
    queue_position = serializers.SerializerMethodField(
        help_text="While queued, its place in the queue, everyone's uploads counted (1: the next to run); else null"
    )
    no_worker = serializers.SerializerMethodField(
        help_text="True while it has been queued for 15 s or more with no worker running: it waits "
        "until one starts (say so to whoever runs the site); else false"
    )

    file_unreadable = serializers.BooleanField(
        read_only=True,
        help_text="True when it failed because of the file itself (damaged, cut short, an unknown codec, "
        "too large): running it again would fail the same way and is refused; upload a fresh copy",
    )

    class Meta(AnalysisSummaryOutputSerializer.Meta):
        fields = [
            *AnalysisSummaryOutputSerializer.Meta.fields,
            "threshold",
            "threshold_real",
            "synthetic_threshold",
            "synthetic_model_version",
            "model",
            "width",
            "height",
            "duration",
            "frame_count",
            "frames_analysed",
            "faces_count",
            "frames",
            "tracks",
            "timings",
            "error",
            "file_unreadable",
            "started_at",
            "file_url",
            "page_url",
            "queue_position",
            "no_worker",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(min_value=1, allow_null=True))
    def get_queue_position(self, analysis: Analysis) -> int | None:
        return selectors.analysis_queue_position(analysis=analysis) or None

    @extend_schema_field(serializers.BooleanField())
    def get_no_worker(self, analysis: Analysis) -> bool:
        return selectors.analysis_waits_for_no_worker(analysis=analysis)

    @extend_schema_field(AnalysisFrameOutputSerializer(many=True))
    def get_frames(self, analysis: Analysis) -> list[dict]:
        context = {**self.context, "analysis_id": analysis.pk}
        return AnalysisFrameOutputSerializer(analysis.frames.all(), many=True, context=context).data

    @extend_schema_field(serializers.URLField())
    def get_file_url(self, analysis: Analysis) -> str:
        return _absolute(self.context["request"], "detection_api:analysis-file", analysis_id=analysis.pk)

    @extend_schema_field(serializers.URLField())
    def get_page_url(self, analysis: Analysis) -> str:
        return _absolute(self.context["request"], "detection:detail", analysis_id=analysis.pk)


class AnalysisCreateOutputSerializer(AnalysisDetailOutputSerializer):
    """The upload's answer: the analysis, and the room the uploader's account now uses."""

    account_stored_bytes = serializers.SerializerMethodField(
        help_text="What the originals of all your analyses take now, this upload included, in "
        "bytes (against the account's limit, DETECTION_USER_STORAGE_MB)"
    )

    class Meta(AnalysisDetailOutputSerializer.Meta):
        fields = [*AnalysisDetailOutputSerializer.Meta.fields, "account_stored_bytes"]
        read_only_fields = fields

    def get_account_stored_bytes(self, analysis: Analysis) -> int:
        return self.context["account_stored_bytes"]


class AnalysisPageOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AnalysisSummaryOutputSerializer(many=True)


class UploadRateUsageOutputSerializer(serializers.Serializer):
    used = serializers.IntegerField(help_text="Uploads (runs again included) counted in the current window")
    limit = serializers.IntegerField(allow_null=True, help_text="Uploads allowed per window (API_UPLOAD_RATE); null: no limit")
    period_seconds = serializers.IntegerField(allow_null=True, help_text="The window, in seconds")
    retry_after = serializers.IntegerField(
        allow_null=True, help_text="At the limit: seconds until one more upload is allowed; else null"
    )


class UsageOutputSerializer(serializers.Serializer):
    stored_bytes = serializers.IntegerField(help_text="What your uploaded originals take in all")
    storage_limit_bytes = serializers.IntegerField(allow_null=True, help_text="What your account may keep; null: no limit")
    pending = serializers.IntegerField(help_text="Your analyses queued or running")
    pending_limit = serializers.IntegerField(allow_null=True, help_text="How many may wait at once; null: no limit")
    max_upload_bytes = serializers.IntegerField(help_text="The largest file the site takes")
    uploads = UploadRateUsageOutputSerializer()
