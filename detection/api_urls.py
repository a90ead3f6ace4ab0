"""Detection's API routes, included under /api/v1/ by deepfake_site/urls.py (namespace
`detection_api`)."""

from django.urls import path

from . import api

app_name = "detection_api"

urlpatterns = [
    path("usage/", api.UsageApi.as_view(), name="usage"),
    path("analyses/", api.AnalysisListCreateApi.as_view(), name="analyses"),
    path("analyses/<uuid:analysis_id>/", api.AnalysisDetailApi.as_view(), name="analysis-detail"),
    path("analyses/<uuid:analysis_id>/file/", api.AnalysisFileApi.as_view(), name="analysis-file"),
    path("analyses/<uuid:analysis_id>/rerun/", api.AnalysisRerunApi.as_view(), name="analysis-rerun"),
    path(
        "analyses/<uuid:analysis_id>/faces/<int:face_id>/heatmap/",
        api.AnalysisHeatmapApi.as_view(),
        name="analysis-heatmap",
    ),
    path(
        "analyses/<uuid:analysis_id>/thumbnail/",
        api.AnalysisThumbnailApi.as_view(),
        name="analysis-thumbnail",
    ),
    path(
        "analyses/<uuid:analysis_id>/frames/<int:frame_index>/image/",
        api.AnalysisFrameImageApi.as_view(),
        name="analysis-frame-image",
    ),
]
