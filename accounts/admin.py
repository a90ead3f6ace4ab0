"""Accounts in the admin. Users are deleted through `services.user_delete`, with their analyses'
files (Django's own admin would delete the rows and leave the files). API tokens are listed and
revoked (deleted), never made or read there, since the database keeps no key to show
(accounts/models.py)."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from rest_framework.authtoken.models import TokenProxy

from . import services
from .models import ApiToken

admin.site.unregister(TokenProxy)  # DRF's plain-text tokens: unused, see settings.INSTALLED_APPS
admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class AccountAdmin(UserAdmin):
    def delete_model(self, request, obj) -> None:
        services.user_delete(user=obj)

    def delete_queryset(self, request, queryset) -> None:
        for user in queryset:
            services.user_delete(user=user)


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
