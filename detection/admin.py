from urllib.parse import urlencode

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from . import services
from .models import Analysis, AnalysisFrame


class AnalysisFrameInline(admin.TabularInline):
    model = AnalysisFrame
    fields = ["index", "time", "fake_probability", "faces_found"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="faces")
    def faces_found(self, frame: AnalysisFrame) -> int:
        return frame.faces.count()

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Analysis)
class AnalysisAdmin(admin.ModelAdmin):
    list_display = [
        "original_name",
        "owner",
        "media_type",
        "status",
        "verdict",
        "fake_probability",
        "faces_count",
        "size",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "verdict", "media_type", "model_version", "created_at"]
    search_fields = ["original_name", "sha256", "owner__username", "owner__email"]
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
    inlines = [AnalysisFrameInline]
    actions = ["fail_selected"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "owner",
                    "result_page",
                    "stored_file",
                    "original_name",
                    "media_type",
                    "size",
                    "sha256",
                ]
            },
        ),
        (
            "Job",
            {
                "fields": [
                    "status",
                    "progress",
                    "error",
                    "worker",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "timings",
                ]
            },
        ),
        (
            "Result",
            {
                "fields": [
                    "verdict",
                    "fake_probability",
                    "threshold",
                    "model_name",
                    "model_version",
                    "width",
                    "height",
                    "duration",
                    "frame_count",
                    "frames_analysed",
                    "faces_count",
                ]
            },
        ),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    @admin.display(description="result page")
    def result_page(self, analysis: Analysis) -> str:
        # The site's own page, which staff may open read-only for any user's analysis.
        url = reverse("detection:detail", args=[analysis.pk])
        history = reverse("detection:history") + "?" + urlencode({"user": analysis.owner.get_username()})
        return format_html(
            '<a href="{}">Open the result page</a> · <a href="{}">all of {}\'s analyses</a>',
            url,
            history,
            analysis.owner.get_username(),
        )

    @admin.display(description="file")
    def stored_file(self, analysis: Analysis) -> str:
        # Uploads are never under a public URL: the owner-or-staff download view serves them.
        url = reverse("detection:file", args=[analysis.pk])
        return format_html('<a href="{}">{}</a>', url, analysis.file.name)

    @admin.action(description="Stop the selected queued or running analyses (mark failed)")
    def fail_selected(self, request, queryset) -> None:
        stopped = sum(
            services.analysis_fail(analysis_id=pk, message="Stopped by an administrator.")
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{stopped} analyses marked failed.")

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, obj: Analysis) -> None:
        services.analysis_delete(analysis=obj)

    def delete_queryset(self, request, queryset) -> None:
        for analysis in queryset:
            services.analysis_delete(analysis=analysis)
