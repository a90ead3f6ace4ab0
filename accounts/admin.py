"""API tokens in the admin: listed and revoked (deleted), never made or read there, since the
database keeps no key to show (accounts/models.py)."""

from django.contrib import admin
from rest_framework.authtoken.models import TokenProxy

from .models import ApiToken

admin.site.unregister(TokenProxy)  # DRF's plain-text tokens: unused, see settings.INSTALLED_APPS


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "made_by", "created", "last_used"]
    list_filter = ["made_by"]
    search_fields = ["user__username", "name", "prefix"]
    readonly_fields = ["user", "name", "prefix", "made_by", "created", "last_used"]
    exclude = ["digest"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
