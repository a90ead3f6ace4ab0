from django.urls import path

from . import views

app_name = "detection"

urlpatterns = [
    path("", views.upload, name="upload"),
    path("analyses/", views.history, name="history"),
    path("analyses/<uuid:analysis_id>/", views.detail, name="detail"),
    path("analyses/<uuid:analysis_id>/delete/", views.delete, name="delete"),
]
