from django.urls import path

from . import views

app_name = "detection"

urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("analyses/", views.history, name="history"),
    path("analyses/export.csv", views.history_export, name="history-export"),
    path("analyses/status/", views.statuses, name="statuses"),
    path("analyses/delete/", views.delete_many, name="delete-many"),
    path("analyses/<uuid:analysis_id>/", views.detail, name="detail"),
    path("analyses/<uuid:analysis_id>/file/", views.file, name="file"),
    path("analyses/<uuid:analysis_id>/progress/", views.progress, name="progress"),
    path("analyses/<uuid:analysis_id>/report/", views.report, name="report"),
    path("analyses/<uuid:analysis_id>/result.json", views.result_json, name="result-json"),
    path("analyses/<uuid:pk>/thumbnail.jpg", views.thumbnail, name="analysis-thumbnail"),
    path(
        "analyses/<uuid:analysis_id>/frames/<int:frame_index>.jpg",
        views.frame_image,
        name="frame-image",
    ),
    path(
        "analyses/<uuid:analysis_id>/heatmaps/<int:face_id>.png", views.heatmap, name="heatmap"
    ),
    path("model-card/", views.model_card, name="model-card"),
    path("analyses/<uuid:analysis_id>/delete/", views.delete, name="delete"),
    path("analyses/<uuid:analysis_id>/rerun/", views.rerun, name="rerun"),
]
