from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib import admin

        from .forms import AdminLoginForm
        from .views import throttled_login_status

        # The admin's log-in is throttled too (its URLs are built later, from these).
        admin.site.login_form = AdminLoginForm
        admin.site.login = throttled_login_status(admin.site.login)
