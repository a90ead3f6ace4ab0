from django.urls import path

from . import views

app_name = "detection"

urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("analyses/", views.history, name="history"),
    path("analyses/status/", views.statuses, name="statuses"),
    path("analyses/delete/", views.delete_many, name="delete-many"),
    path("analyses/<uuid:analysis_id>/", views.detail, name="detail"),
    path("analyses/<uuid:analysis_id>/file/", views.file, name="file"),
    path("analyses/<uuid:analysis_id>/delete/", views.delete, name="delete"),
]
