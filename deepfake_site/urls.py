from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import errors, health
from .negotiation import SchemaFormats

# Version 1 of the API: each app routes its own operations (<app>/api_urls.py).
api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("detection.api_urls")),
    re_path(r"^(?P<rest>.*)$", errors.api_path_not_found),  # last: any other path is a JSON 404
]

urlpatterns = [
    path("health/", health.health, name="health"),
    path("", include("detection.urls")),
    path("accounts/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    # YAML, or JSON for ?format=json (every other API view answers JSON only)
    path("api/schema/", SpectacularAPIView.as_view(content_negotiation_class=SchemaFormats), name="api-schema"),
    # The split view serves its start-up script as a file: the page needs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "deepfake_site.errors.bad_request"
handler403 = "deepfake_site.errors.permission_denied"
handler404 = "deepfake_site.errors.page_not_found"
handler500 = "deepfake_site.errors.server_error"
