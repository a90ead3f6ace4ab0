from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.api import TokenCreateApi
from detection.api import (
    AnalysisDetailApi,
    AnalysisFileApi,
    AnalysisFrameImageApi,
    AnalysisHeatmapApi,
    AnalysisListCreateApi,
    AnalysisThumbnailApi,
)

api_v1 = [
    path("auth/token/", TokenCreateApi.as_view(), name="api-token"),
    path("analyses/", AnalysisListCreateApi.as_view(), name="api-analyses"),
    path(
        "analyses/<uuid:analysis_id>/", AnalysisDetailApi.as_view(), name="api-analysis-detail"
    ),
    path(
        "analyses/<uuid:analysis_id>/file/", AnalysisFileApi.as_view(), name="api-analysis-file"
    ),
    path(
        "analyses/<uuid:analysis_id>/faces/<int:face_id>/heatmap/",
        AnalysisHeatmapApi.as_view(),
        name="api-analysis-heatmap",
    ),
    path(
        "analyses/<uuid:analysis_id>/thumbnail/",
        AnalysisThumbnailApi.as_view(),
        name="api-analysis-thumbnail",
    ),
    path(
        "analyses/<uuid:analysis_id>/frames/<int:frame_index>/image/",
        AnalysisFrameImageApi.as_view(),
        name="api-analysis-frame-image",
    ),
]

urlpatterns = [
    path("", include("detection.urls")),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: the page needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "deepfake_site.errors.bad_request"
handler403 = "deepfake_site.errors.permission_denied"
handler404 = "deepfake_site.errors.page_not_found"
handler500 = "deepfake_site.errors.server_error"
