"""A password "validator" that validates nothing: Django calls every validator's
`password_changed` whenever a password is set (change form, reset form, admin,
`changepassword`), which is the one place that sees them all."""

from __future__ import annotations

from . import services


class RotateApiTokenOnPasswordChange:
    def validate(self, password, user=None) -> None:
        return None

    def password_changed(self, password, user=None) -> None:
        """A new password also revokes every API token: whoever held the old password may have
        made or copied tokens too."""
        if user is not None and user.pk is not None:
            services.api_tokens_revoke_all(user=user)

    def get_help_text(self) -> str:
        return "Setting a new password also revokes your API tokens."
