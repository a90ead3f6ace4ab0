from django.contrib.auth import views as auth_views
from django.urls import path

from . import views
from .forms import LoginForm, NewPasswordForm

# Password reset by e-mail: Django's own views, with this site's templates in
# templates/registration/password_reset_*.
password_reset = [
    path(
        "password/reset/",
        views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(form_class=NewPasswordForm),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]


urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path(
        "login/",
        views.throttled_login_status(
            auth_views.LoginView.as_view(redirect_authenticated_user=True, authentication_form=LoginForm)
        ),
        name="login",
    ),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("profile/", views.profile, name="profile"),
    path("delete/", views.account_delete, name="account_delete"),
    path("email/", views.email_change, name="email_change"),
    path("email/confirm/<str:token>/", views.email_change_confirm, name="email_change_confirm"),
    path("tokens/", views.api_token_create, name="api_token_create"),
    path("tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api_token_revoke"),
    *password_reset,
]
