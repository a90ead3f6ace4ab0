import uuid

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, SetPasswordForm, UserCreationForm

from . import services
from .selectors import client_network, email_in_use
from .validators import RotateApiTokenOnPasswordChange


class FocusFirstErrorMixin:
    """After a refused submission the cursor starts in the first field with an error (Django
    puts it in the first field, whatever went wrong), so a keyboard or screen-reader user lands
    where the problem is."""

    def full_clean(self):
        super().full_clean()
        wrong = [name for name in self.fields if name in self._errors]
        if wrong:
            for field in self.fields.values():
                field.widget.attrs.pop("autofocus", None)
            self.fields[wrong[0]].widget.attrs["autofocus"] = True
        elif self._errors and NON_FIELD_ERRORS in self._errors:
            self._errors_tie_to_fields()

    def _errors_tie_to_fields(self) -> None:
        """An error about the whole form (a log-in refused) is read out with each field: the
        cursor starts in the first field, past the error above it, and a screen reader would
        say only "Username"."""
        self._errors_tied = True
        for name, field in self.fields.items():
            if field.widget.is_hidden:
                continue
            described = ["form_error"] + ([f"{self[name].auto_id}_helptext"] if field.help_text else [])
            field.widget.attrs.update({"aria-invalid": "true", "aria-describedby": " ".join(described)})

    def get_context(self):
        context = super().get_context()
        if getattr(self, "_errors_tied", False):
            context["errors"].field_id = "form"  # the list above the fields gets id="form_error"
        return context


class NewPasswordFieldsMixin:
    """The rules for a new password listed under its first field, and a broken rule reported
    there too (Django reports it under the confirmation). The rules leave out the note that
    a new password revokes the API tokens: that is no rule, and the pages that set a password
    on an existing account say it on their own."""

    first_password_field = "password1"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        rules = [
            validator
            for validator in password_validation.get_default_password_validators()
            if not isinstance(validator, RotateApiTokenOnPasswordChange)
        ]
        self.fields[self.first_password_field].help_text = password_validation.password_validators_help_text_html(rules)

    def validate_password_for_user(self, user, password_field_name="password2"):
        if self.cleaned_data.get(password_field_name):  # only once the two fields match
            super().validate_password_for_user(user, password_field_name=self.first_password_field)


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, required=False, label="What is it for?",
        help_text="A name to tell your tokens apart, like “newsroom script”.",
    )
    # one id per page shown: sending the form again (a reload, a double click) makes no second token
    form_id = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["form_id"].initial = uuid.uuid4().hex


class SignupForm(FocusFirstErrorMixin, NewPasswordFieldsMixin, UserCreationForm):
    """Username, email and a password checked by Django's password validators."""

    email = forms.EmailField(
        required=True,
        help_text="Only used if you need to recover access.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ["username", "email"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if settings.EMAIL_CHANGE_BY_LINK:
            self.fields["email"].help_text = (
                "Only used if you need to recover access. We send it a link: the account keeps it once you open that link."
            )

    def clean_email(self) -> str:
        """Where the site sends e-mail, a taken address is not refused here: its owner is told by
        e-mail instead (services.user_sign_up), so the page tells nobody whose address it is."""
        email = self.cleaned_data["email"]
        if not settings.EMAIL_CHANGE_BY_LINK and email_in_use(email=email):
            raise forms.ValidationError("An account with this email address already exists.", code="taken")
        return email


class NewPasswordForm(FocusFirstErrorMixin, NewPasswordFieldsMixin, SetPasswordForm):
    """The password reset's form."""

    first_password_field = "new_password1"


class ChangePasswordForm(FocusFirstErrorMixin, NewPasswordFieldsMixin, PasswordChangeForm):
    """Django's password change; a wrong old password counts as a failed log-in, as on every page
    that asks for the password (a session left open must not allow unlimited guesses)."""

    first_password_field = "new_password1"

    def __init__(self, user, *args, request, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        old = self.cleaned_data["old_password"]
        if _password_refused(user=self.user, request=self.request, is_correct=lambda: self.user.check_password(old)):
            raise forms.ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old


class ThrottledLoginMixin:
    """Refuses to check passwords after too many failures for the account from the same
    address (or from that address at all), until LOGIN_FAILURE_WINDOW has passed."""

    throttled_message = (
        "Too many failed log-in attempts. Wait %(minutes)d minutes, then try again."
    )

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        address = client_network(self.request)
        if services.login_blocked(username=username, address=address):
            minutes = max(1, round(settings.LOGIN_FAILURE_WINDOW / 60))
            raise forms.ValidationError(
                self.throttled_message, code="throttled", params={"minutes": minutes}
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError as exc:
            if exc.code == "invalid_login":
                services.login_failure_record(username=username, address=address)
            raise
        services.login_failures_clear(username=username, address=address)
        return cleaned


class PasswordCheckForm(FocusFirstErrorMixin, forms.Form):
    """A form that asks for the account's password before a lasting change: a session left open
    on a shared computer must not be enough. Wrong passwords count as failed log-ins."""

    password = forms.CharField(
        label="Your password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, *args, user, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.request = user, request

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        if _password_refused(user=self.user, request=self.request, is_correct=lambda: self.user.check_password(password)):
            raise forms.ValidationError("That is not your password.", code="wrong_password")
        return password


def _password_refused(*, user, request, is_correct) -> bool:
    """Whether a logged-in user's password check fails, counted as a failed log-in when it does.
    Past the log-in limit the password is not checked at all (ValidationError "throttled")."""
    username, address = user.get_username(), client_network(request)
    if services.login_blocked(username=username, address=address):
        minutes = max(1, round(settings.LOGIN_FAILURE_WINDOW / 60))
        raise forms.ValidationError(ThrottledLoginMixin.throttled_message % {"minutes": minutes}, code="throttled")
    if is_correct():
        return False
    services.login_failure_record(username=username, address=address)
    return True


class AccountDeleteForm(PasswordCheckForm):
    """The password, asked before the account is deleted."""


class EmailChangeForm(PasswordCheckForm):
    """A new e-mail address, and the password."""

    email = forms.EmailField(
        label="New email address",
        help_text="Only used if you need to recover access.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    field_order = ["email", "password"]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if email == self.user.email:
            raise forms.ValidationError("This is your address already.", code="same")
        # where the site sends e-mail, another account's address is told to its owner instead
        # (services.user_email_change_request)
        if not settings.EMAIL_CHANGE_BY_LINK and email_in_use(email=email, user=self.user):
            raise forms.ValidationError("An account with this email address already exists.", code="taken")
        return email


class LoginForm(FocusFirstErrorMixin, ThrottledLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
