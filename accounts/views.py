"""Sign-up, profile, e-mail change and API token pages, the password change page and log-out
(Django's own views with a message saying what happened). Login and password reset are Django's own views,
configured in urls.py."""

from __future__ import annotations

import logging
from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.contrib.messages.views import SuccessMessageMixin
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import selectors, services
from .forms import AccountDeleteForm, ApiTokenForm, ChangePasswordForm, EmailChangeForm, SignupForm, ThrottledLoginMixin
from .selectors import client_network

logger = logging.getLogger(__name__)


def throttled_login_status(view):
    """A log-in view that answers 429 Too Many Requests, with Retry-After, when its form
    refused to check the password (ThrottledLoginMixin); the page and its message stay."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        form = (getattr(response, "context_data", None) or {}).get("form")
        if isinstance(form, ThrottledLoginMixin) and form.is_bound and form.has_error("__all__", "throttled"):
            response.status_code = 429
            response["Retry-After"] = str(settings.LOGIN_FAILURE_WINDOW)
        return response

    return wrapped


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("detection:upload")
    form = SignupForm()
    status = 200
    if request.method == "POST":
        form = SignupForm(request.POST)
        address = client_network(request)
        typed = {name: request.POST.get(name, "") for name in ("username", "email")}
        refusal = _signup_refusal(address=address, email=typed["email"])
        if refusal:
            # the form is not checked (it would say whether an account has the address); it
            # keeps what was typed
            context = {"form": SignupForm(initial=typed), "refusal": refusal}
            response = render(request, "accounts/signup.html", context, status=429)
            response["Retry-After"] = str(services.HOUR)
            return response
        if form.is_valid():
            username, email = form.cleaned_data["username"], form.cleaned_data["email"]
            services.signup_record(address=address)  # before the mail goes out: see user_sign_up
            try:
                user, sent = services.user_sign_up(
                    username=username,
                    email=email,
                    password=form.cleaned_data["password1"],
                    address=address,
                    confirm_url=lambda token: request.build_absolute_uri(reverse("email_change_confirm", args=[token])),
                    log_in_url=request.build_absolute_uri(reverse("login")),
                )
            except services.EmailTaken as exc:
                form.add_error("email", forms.ValidationError(str(exc), code="taken"))
            except services.UsernameTaken as exc:  # a sign-up sent twice at once
                form.add_error("username", forms.ValidationError(str(exc), code="unique"))
            except services.AddressRefused as refused:  # no account was kept
                form.add_error("email", str(refused))
            except services.MailNotSent:  # no account was kept
                logger.exception("The sign-up link to an address at %s could not be sent", _domain(email))
                form.add_error(None, "We could not send e-mail just now, so no account was made. Try again in a few minutes.")
                status = 503
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                if user.email:
                    messages.success(request, f"Welcome, {user.username}! Upload a photo or a video.")
                elif sent:
                    messages.success(request, _sign_up_link_sent(username=username, email=email))
                else:
                    messages.warning(
                        request,
                        f"Welcome, {username}! Too many links went to {email} lately, so none was sent now: "
                        "add the address on your profile page in an hour. Until then a forgotten password "
                        "cannot be reset.",
                    )
                return redirect("detection:upload")
        elif form.has_error("email", "taken"):  # it told whose address is in use: counted as a sign-up
            services.signup_record(address=address)
    response = render(request, "accounts/signup.html", {"form": form}, status=status)
    if status == 503:
        response["Retry-After"] = "300"
    return response


def _domain(email: str) -> str:
    """What the logs may say of an address: its domain."""
    return email.rpartition("@")[2] or "?"


def _signup_refusal(*, address: str, email: str) -> str:
    """Why a sign-up from the client network `address` with `email` is refused before its form
    is checked, or ""."""
    if services.signup_blocked(address=address):
        counted = "accounts were made" if settings.EMAIL_CHANGE_BY_LINK else "accounts were made, or taken addresses tried,"
        return f"Too many {counted} from your network in the last hour. Try again later."
    if settings.EMAIL_CHANGE_BY_LINK and services.email_links_blocked(email=email, address=address):
        return "Too many links were sent to this email address in the last hour. Try again later."
    return ""


def _sign_up_link_sent(*, username: str, email: str) -> str:
    return (
        f"Welcome, {username}! We sent a link to {email}: open it within {selectors.EMAIL_CHANGE_LINK_HOURS} "
        f"hours, logged in as {username}, to confirm the address. Until then your account has no email "
        "address, so a forgotten password cannot be reset. Meanwhile, upload a photo or a video."
    )


def _profile_page(request, *, form: ApiTokenForm | None = None, made=None):
    context = {
        "tokens": selectors.api_token_list(user=request.user),
        "form": form or ApiTokenForm(),
        "tokens_allowed": settings.API_TOKENS_PER_USER,
        "made": made,  # (token, key): a token just made, whose key is shown this once
        "email_pending": selectors.user_email_pending(user=request.user),
        "link_hours": selectors.EMAIL_CHANGE_LINK_HOURS,
    }
    return render(request, "accounts/profile.html", context)


@never_cache
@login_required
def profile(request):
    return _profile_page(request)


@never_cache  # the answer shows a new token's key: no browser or proxy may keep a copy
@login_required
@require_POST
def api_token_create(request):
    """Make a token and show its key on the profile page, in this answer only: the key is not
    kept, so there is no page to redirect to that could show it again."""
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            made = services.api_token_create(
                user=request.user, name=form.cleaned_data["name"], form_id=form.cleaned_data["form_id"]
            )
        except services.TooManyTokens as refusal:
            form.add_error(None, str(refusal))
        except services.TokenFormSentAgain as refusal:
            messages.warning(request, str(refusal))
            return _profile_page(request)  # with a new form, which makes a token when sent
        else:
            return _profile_page(request, made=made)
    return _profile_page(request, form=form)


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request):
    """Asks for the password, then deletes the account with every analysis and token it has."""
    form = AccountDeleteForm(request.POST or None, user=request.user, request=request)
    if request.method == "POST" and form.is_valid():
        user = request.user
        logout(request)
        services.user_delete(user=user)
        messages.success(request, "Your account was deleted, with every analysis, file and API token it kept.")
        return redirect("login")
    status = 429 if form.has_error("password", "throttled") else 200
    return render(request, "accounts/delete.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def email_change(request):
    """A new e-mail address, after the password: mailed a link to confirm it where the site
    sends e-mail (settings.EMAIL_CHANGE_BY_LINK), kept at once where it cannot."""
    asked = request.POST.get("email", "") if request.method == "POST" else ""
    status, retry_after = 200, None  # 429 Too Many Requests or 503 come with Retry-After (seconds)
    refusal = ""
    address = client_network(request)
    if asked and services.email_change_blocked(user=request.user, email=asked, address=address):
        # refused before the form is checked: it would say whether another account has the address
        form = EmailChangeForm(user=request.user, request=request, initial={"email": asked})
        refusal, status, retry_after = "Too many new addresses were tried lately from your account or your network. Try again in an hour.", 429, services.HOUR
    else:
        form = EmailChangeForm(request.POST or None, user=request.user, request=request)
    if form.has_error("password", "throttled"):  # (a refused form is unbound: no errors)
        status, retry_after = 429, settings.LOGIN_FAILURE_WINDOW
    elif request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        try:
            if not settings.EMAIL_CHANGE_BY_LINK:
                services.user_email_set(user=request.user, email=email)
                messages.success(request, f"Your email address is now {email}.")
                return redirect("profile")
            services.user_email_change_request(
                user=request.user,
                email=email,
                address=address,
                confirm_url=lambda token: request.build_absolute_uri(reverse("email_change_confirm", args=[token])),
            )
        except services.AddressRefused as refused:
            form.add_error("email", str(refused))
        except services.MailboxBusy as busy:
            form.add_error("email", str(busy))
            status, retry_after = 429, services.HOUR
        except services.MailNotSent as failure:
            logger.exception("The e-mail change link to an address at %s could not be sent", _domain(email))
            form.add_error(None, str(failure))
            status, retry_after = 503, 300
        except services.EmailTaken as taken:
            form.add_error("email", forms.ValidationError(str(taken), code="taken"))
        else:
            messages.info(
                request,
                f"We sent a link to {email}. Open it to confirm the new address; until then your "
                f"address stays {request.user.email or 'empty'}.",
            )
            return redirect("profile")
    if form.has_error("email", "taken"):  # an answer about someone else's address: counted
        services.email_change_refusal_record(user=request.user, address=address)
    context = {
        "form": form,
        "refusal": refusal,
        "settings_email_by_link": settings.EMAIL_CHANGE_BY_LINK,
        "link_hours": selectors.EMAIL_CHANGE_LINK_HOURS,
    }
    response = render(request, "accounts/email_change.html", context, status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def email_change_confirm(request, token: str):
    """The page a confirmation link opens: the new address and a button (a GET changes nothing,
    so a mail scanner that follows links confirms nothing). Logged out, the log-in page first,
    saying why."""
    if not request.user.is_authenticated:
        messages.info(request, "Log in to the account that asked for this email address to confirm it.")
        return redirect_to_login(request.get_full_path())
    try:
        email = selectors.email_change_link_read(user=request.user, token=token)
        if request.method == "POST":
            services.user_email_change_confirm(user=request.user, token=token)
            messages.success(request, f"Your email address is now {email}.")
            return redirect("profile")
    except (selectors.EmailChangeLinkInvalid, services.EmailTaken) as refusal:
        return render(request, "accounts/email_change_confirm.html", {"refusal": str(refusal)}, status=400)
    return render(request, "accounts/email_change_confirm.html", {"email": email})


@login_required
@require_POST
def api_token_revoke(request, token_id: int):
    revoked = services.api_token_revoke(user=request.user, token_id=token_id)
    if revoked is None:
        raise Http404("No such token.")
    messages.success(request, f"The token “{revoked.name}” ({revoked.prefix}…) was revoked: scripts that send it are refused now.")
    return redirect("profile")


class LogoutView(auth_views.LogoutView):
    """Django's log-out (POST, from the button on every page), which says it worked; a GET (a
    typed or bookmarked address) shows a page with the button instead of a bare 405."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect("login")
        return render(request, "registration/logout_confirm.html")

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You are logged out.")
        return response


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    """Django's password change; past the log-in limit for wrong old passwords, 429."""

    form_class = ChangePasswordForm
    success_message = "Your password was changed."
    success_url = reverse_lazy("profile")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error("old_password", "throttled"):
            response.status_code = 429
            response["Retry-After"] = str(settings.LOGIN_FAILURE_WINDOW)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset by e-mail, at most PASSWORD_RESET_LIMIT e-mails an hour per client and per
    address (429 past it), and none where the site cannot send e-mail (PASSWORD_RESET_BY_EMAIL):
    the page then says whom to ask."""

    def dispatch(self, request, *args, **kwargs):
        if not settings.PASSWORD_RESET_BY_EMAIL:
            return render(request, "registration/password_reset_unavailable.html")
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        email, address = form.cleaned_data["email"], client_network(self.request)
        if services.password_reset_blocked(email=email, address=address):
            form.add_error(None, "Too many reset e-mails were asked for lately. Try again in an hour.")
            response = self.form_invalid(form)
            response.status_code = 429
            response["Retry-After"] = str(services.HOUR)
            return response
        services.password_reset_record(email=email, address=address)
        return super().form_valid(form)
