import re
import smtplib
import time
from unittest import mock

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import override_settings
from django.urls import reverse
from accounts.models import ApiToken
from detection.models import Analysis
from accounts.services import SHARED_FACTOR, api_token_create

from tests.detection.base import PASSWORD, BaseTestCase


class SignupTests(BaseTestCase):
    def signup(self, **overrides):
        data = {
            "username": "carol",
            "email": "carol@example.org",
            "password1": PASSWORD,
            "password2": PASSWORD,
            **overrides,
        }
        return self.client.post(reverse("signup"), data, follow=True)

    def test_it_shows_the_form(self):
        response = self.client.get(reverse("signup"))
        self.assertContains(response, 'name="username"')
        self.assertContains(response, 'name="email"')

    def test_the_form_lists_the_password_rules_but_not_the_token_note_of_a_password_change(self):
        html = self.client.get(reverse("signup")).content.decode()

        self.assertIn("at least 8 characters", html)
        self.assertNotIn("revokes your API tokens", html)

    def test_a_weak_password_is_reported_under_the_password_field_where_its_rules_are(self):
        response = self.signup(password1="password", password2="password")

        errors = response.context["form"].errors
        self.assertIn("This password is too common.", errors["password1"])
        self.assertNotIn("password2", errors)
        self.assertFalse(get_user_model().objects.filter(username="carol").exists())

    @override_settings(EMAIL_CHANGE_BY_LINK=False)
    def test_it_creates_the_user_and_logs_them_in_without_a_token_they_could_not_see(self):
        response = self.signup()

        carol = get_user_model().objects.get(username="carol")
        self.assertEqual(carol.email, "carol@example.org")
        self.assertTrue(carol.check_password(PASSWORD))
        self.assertFalse(ApiToken.objects.filter(user=carol).exists())  # made on the profile page, shown once
        self.assertEqual(response.context["user"], carol)
        self.assertRedirects(response, reverse("detection:upload"))
        self.assertContains(response, "Welcome, carol!")

    def test_after_a_refusal_the_cursor_starts_in_the_first_field_with_an_error(self):
        response = self.signup(password1="password", password2="password")

        form = response.context["form"]
        self.assertEqual(form.fields["password1"].widget.attrs.get("autofocus"), True)
        self.assertNotIn("autofocus", form.fields["username"].widget.attrs)
        self.assertEqual(response.content.decode().count("autofocus"), 1)

    def test_it_refuses_a_password_the_validators_reject(self):
        response = self.signup(password1="password", password2="password")

        self.assertContains(response, "This password is too common.")
        self.assertFalse(get_user_model().objects.filter(username="carol").exists())

    def test_it_refuses_mismatched_passwords(self):
        response = self.signup(password2=PASSWORD + "!")

        self.assertContains(response, "didn’t match")
        self.assertFalse(get_user_model().objects.filter(username="carol").exists())

    def test_it_refuses_a_taken_username(self):
        response = self.signup(username="alice")
        self.assertContains(response, "A user with that username already exists.")

    @override_settings(EMAIL_CHANGE_BY_LINK=False)  # with mail, see SignupConfirmationTests
    def test_it_refuses_an_email_already_in_use(self):
        response = self.signup(email="ALICE@example.org")

        self.assertContains(response, "An account with this email address already exists.")
        self.assertFalse(get_user_model().objects.filter(username="carol").exists())

    def test_it_requires_an_email(self):
        response = self.signup(email="")
        self.assertFalse(get_user_model().objects.filter(username="carol").exists())
        self.assertTrue(response.context["form"].has_error("email"))

    def test_it_sends_a_logged_in_user_to_the_upload_page(self):
        self.login(self.alice)
        response = self.client.get(reverse("signup"))
        self.assertRedirects(response, reverse("detection:upload"))


@override_settings(EMAIL_CHANGE_BY_LINK=True)
class SignupConfirmationTests(BaseTestCase):
    """Where the site sends e-mail, a new account gets its address once a link mailed to it is
    opened."""

    def signup(self, username: str = "carol", email: str = "carol@example.org", **kwargs):
        data = {"username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD}
        return self.client.post(reverse("signup"), data, **kwargs)

    def link(self) -> str:
        return re.search(r"http://testserver(/accounts/email/confirm/\S+/)", mail.outbox[-1].body).group(1)

    def email_of(self, username: str) -> str:
        return get_user_model().objects.get(username=username).email

    def test_a_new_account_has_no_address_until_the_link_mailed_to_it_is_opened(self):
        page = self.client.get(reverse("signup"))
        self.assertContains(page, "We send it a link")

        response = self.signup(follow=True)

        self.assertRedirects(response, reverse("detection:upload"))
        self.assertContains(response, "We sent a link to carol@example.org")
        self.assertContains(response, "a forgotten password cannot be reset")
        self.assertEqual(self.email_of("carol"), "")
        self.assertEqual([m.to for m in mail.outbox], [["carol@example.org"]])
        self.assertEqual(mail.outbox[0].subject, "Confirm the e-mail address of your new deepfake detector account")
        self.assertIn("made the account carol", mail.outbox[0].body)
        profile = self.client.get(reverse("profile"))
        self.assertContains(profile, "Add one")
        self.assertContains(profile, "A link to confirm <strong>carol@example.org</strong> was sent at")

        with self.captureOnCommitCallbacks(execute=True):
            confirmed = self.client.post(self.link(), follow=True)

        self.assertContains(confirmed, "Your email address is now carol@example.org.")
        self.assertEqual(self.email_of("carol"), "carol@example.org")
        self.assertNotContains(self.client.get(reverse("profile")), 'id="email-pending"')
        self.assertEqual(len(mail.outbox), 1)  # no notice: there was no old address to tell

    def test_an_address_nobody_confirmed_does_not_keep_its_owner_out(self):
        self.signup(username="mallory", email="dave@example.org")
        squatters_link = self.link()
        self.client.logout()

        response = self.signup(username="dave", email="dave@example.org", follow=True)

        self.assertContains(response, "We sent a link to dave@example.org")
        self.client.post(self.link())
        self.assertEqual(self.email_of("dave"), "dave@example.org")
        self.client.force_login(get_user_model().objects.get(username="mallory"))
        refused = self.client.post(squatters_link)
        self.assertContains(refused, "An account with this email address already exists.", status_code=400)
        self.assertEqual(self.email_of("mallory"), "")

    def test_an_address_another_account_has_gets_its_owner_a_notice_and_the_page_tells_nothing(self):
        response = self.signup(email="ALICE@example.org", follow=True)

        self.assertContains(response, "We sent a link to ALICE@example.org")
        self.assertNotContains(response, "already")
        self.assertEqual(self.email_of("carol"), "")
        self.assertEqual(self.email_of("alice"), "alice@example.org")
        [notice] = mail.outbox
        self.assertEqual(notice.to, ["alice@example.org"])  # the owner's own address, not as typed
        self.assertEqual(notice.subject, "Someone asked to use your e-mail address on the deepfake detector")
        self.assertIn("It belongs to your account, alice", notice.body)
        self.assertIn("for a new account", notice.body)
        self.assertIn("http://testserver/accounts/login/", notice.body)
        self.assertNotIn("carol", notice.body)  # the name someone typed is not mailed to a stranger
        self.assertNotIn("/accounts/email/confirm/", notice.body)

    def test_no_password_reset_goes_to_an_address_the_account_has_not_confirmed(self):
        self.signup()
        self.client.logout()
        mail.outbox.clear()

        self.client.post(reverse("password_reset"), {"email": "carol@example.org"})

        self.assertEqual(mail.outbox, [])

    def test_nothing_is_kept_when_the_link_cannot_be_sent(self):
        with mock.patch("accounts.services.send_mail", side_effect=smtplib.SMTPServerDisconnected("down")):
            with self.assertLogs("accounts.views", "ERROR"):
                response = self.signup()

        self.assertContains(response, "We could not send e-mail just now, so no account was made.", status_code=503)
        self.assertEqual(response["Retry-After"], "300")
        self.assertFalse(get_user_model().objects.filter(username="carol").exists())
        self.assertNotIn("_auth_user_id", self.client.session)
        self.assertEqual(response.context["form"]["email"].value(), "carol@example.org")

    @override_settings(SIGNUP_LIMIT=100)
    def test_sign_ups_mail_one_address_a_few_times_an_hour_per_network_and_a_few_more_from_all(self):
        """The per-network limit refuses the sign-up; the limit from all networks only stops the mail."""
        limit, everywhere = settings.PASSWORD_RESET_LIMIT, settings.PASSWORD_RESET_LIMIT * SHARED_FACTOR
        for n in range(limit):
            self.signup(username=f"near{n}", email="Victim@example.org", REMOTE_ADDR="203.0.113.1")
            self.client.logout()

        refused = self.signup(username="one-more", email="victim@example.org", REMOTE_ADDR="203.0.113.1")

        self.assertContains(refused, "Too many links were sent to this email address", status_code=429)
        self.assertEqual(refused["Retry-After"], "3600")
        self.assertEqual(refused.context["form"]["username"].value(), "one-more")
        self.assertFalse(get_user_model().objects.filter(username="one-more").exists())
        # one network cannot keep the owner from signing up from another
        self.assertEqual(self.signup(username="victim", email="victim@example.org", REMOTE_ADDR="198.51.100.9").status_code, 302)
        self.client.logout()
        for n in range(everywhere - limit - 1):
            self.signup(username=f"far{n}", email="victim@example.org", REMOTE_ADDR=f"192.0.2.{n + 1}")
            self.client.logout()
        self.assertEqual(len(mail.outbox), everywhere)

        # past the limit from all networks nothing more is mailed, but nobody is kept out of
        # making an account: it starts without the address, to be added on the profile later
        late = self.signup(username="late", email="victim@example.org", REMOTE_ADDR="192.0.2.200", follow=True)

        self.assertContains(late, "Too many links went to victim@example.org lately, so none was sent now")
        self.assertEqual(self.email_of("late"), "")
        self.assertEqual(len(mail.outbox), everywhere)

    def test_a_sign_up_sent_twice_at_once_gets_a_message_not_an_error(self):
        self.signup()
        self.client.logout()
        form = "accounts.forms.SignupForm"  # both requests passed its checks before either was saved
        with mock.patch(f"{form}.clean_username", lambda form: form.cleaned_data["username"]), mock.patch(
            f"{form}.validate_unique", lambda form: None
        ):
            second = self.signup(email="carol2@example.org")

        self.assertContains(second, "A user with that username already exists.")
        self.assertEqual(get_user_model().objects.filter(username="carol").count(), 1)

    def test_an_address_the_mail_server_refuses_is_reported_under_the_email_field(self):
        refused = smtplib.SMTPRecipientsRefused({"carol@example.org": (550, b"no such user")})
        with mock.patch("accounts.services.send_mail", side_effect=refused):
            response = self.signup()

        self.assertEqual(response.status_code, 200)
        self.assertIn("The mail server refuses to deliver to this address.", response.context["form"].errors["email"][0])
        self.assertFalse(get_user_model().objects.filter(username="carol").exists())


class LoginTests(BaseTestCase):
    def test_it_logs_in_with_the_right_password(self):
        response = self.client.post(
            reverse("login"), {"username": "alice", "password": PASSWORD}, follow=True
        )

        self.assertRedirects(response, reverse("detection:upload"))
        self.assertEqual(response.context["user"], self.alice)

    def test_a_refused_log_in_is_read_out_with_each_field_and_named_in_the_title(self):
        response = self.client.post(reverse("login"), {"username": "alice", "password": "wrong"})
        page = response.content.decode()

        self.assertIn('<ul class="errorlist nonfield" id="form_error">', page)
        for name in ("username", "password"):
            field = re.search(rf'<input[^>]*name="{name}"[^>]*>', page).group(0)
            self.assertIn('aria-invalid="true"', field)
            self.assertIn('aria-describedby="form_error"', field)
        self.assertIn("<title>Error: Log in · Deepfake detector</title>", page)

    def test_it_goes_back_to_the_page_that_asked_for_a_login(self):
        history = reverse("detection:history")
        response = self.client.post(
            reverse("login"), {"username": "alice", "password": PASSWORD, "next": history}
        )
        self.assertRedirects(response, history)

    def test_it_shows_an_error_for_a_wrong_password(self):
        response = self.client.post(reverse("login"), {"username": "alice", "password": "nope"})

        self.assertContains(response, "Please enter a correct username and password")
        self.assertFalse(response.context["user"].is_authenticated)


class LogoutTests(BaseTestCase):
    def test_it_logs_out(self):
        self.login(self.alice)

        response = self.client.post(reverse("logout"), follow=True)

        self.assertRedirects(response, reverse("login"))
        self.assertFalse(response.context["user"].is_authenticated)
        upload = self.client.get(reverse("detection:upload"))
        self.assertRedirects(upload, f"{reverse('login')}?next={reverse('detection:upload')}")

    def test_it_says_the_person_is_logged_out(self):
        self.login(self.alice)

        response = self.client.post(reverse("logout"), follow=True)

        self.assertContains(response, "You are logged out.")

    def test_the_typed_address_offers_the_button_instead_of_an_error(self):
        self.login(self.alice)

        page = self.client.get(reverse("logout"))

        self.assertContains(page, "You are logged in as alice.")
        self.assertContains(page, f'action="{reverse("logout")}"')
        self.assertTrue(self.client.get(reverse("detection:history")).context["user"].is_authenticated)
        self.client.logout()
        self.assertRedirects(self.client.get(reverse("logout")), reverse("login"))

    def test_every_page_offers_a_logout_button(self):
        self.login(self.alice)
        response = self.client.get(reverse("detection:history"))
        self.assertContains(response, f'action="{reverse("logout")}"')


class PasswordChangeTests(BaseTestCase):
    def test_it_changes_the_password_and_says_so(self):
        self.login(self.alice)
        new_password = "another long passphrase 42"

        response = self.client.post(
            reverse("password_change"),
            {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
            follow=True,
        )

        self.assertRedirects(response, reverse("profile"))
        self.assertContains(response, "Your password was changed.")
        self.alice.refresh_from_db()
        self.assertTrue(self.alice.check_password(new_password))

    def test_the_form_warns_that_a_new_password_replaces_the_api_token_apart_from_the_rules(self):
        self.login(self.alice)
        response = self.client.get(reverse("password_change"))

        self.assertContains(response, "Setting a new password also revokes your API tokens")
        rules = response.context["form"].fields["new_password1"].help_text
        self.assertIn("at least 8 characters", rules)
        self.assertNotIn("API token", rules)

    def test_a_broken_rule_is_reported_under_the_new_password_not_its_confirmation(self):
        self.login(self.alice)
        response = self.client.post(
            reverse("password_change"),
            {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
        )

        errors = response.context["form"].errors
        self.assertIn("This password is entirely numeric.", errors["new_password1"])
        self.assertNotIn("new_password2", errors)

    def test_it_needs_the_old_password(self):
        self.login(self.alice)
        response = self.client.post(
            reverse("password_change"),
            {"old_password": "wrong", "new_password1": "x" * 20, "new_password2": "x" * 20},
        )
        self.assertContains(response, "Your old password was entered incorrectly.")


class ProfileTests(BaseTestCase):
    def test_it_lists_the_users_tokens_by_name_and_first_characters_never_a_whole_key(self):
        self.login(self.alice)
        response = self.client.get(reverse("profile"))

        self.assertContains(response, "alice&#x27;s script")
        self.assertContains(response, f"{self.alice_key[:6]}…")
        self.assertContains(response, "never used")
        self.assertNotContains(response, self.alice_key)
        self.assertNotContains(response, "bob&#x27;s script")
        self.assertNotContains(response, self.bob_key[:6])

    def test_it_sends_anonymous_visitors_to_log_in(self):
        response = self.client.get(reverse("profile"))
        self.assertRedirects(response, f"{reverse('login')}?next={reverse('profile')}")


class ApiTokenCreateTests(BaseTestCase):
    analyses = reverse("detection_api:analyses")

    def status_with(self, key: str) -> int:
        return self.client_class().get(self.analyses, HTTP_AUTHORIZATION=f"Token {key}").status_code

    def test_it_shows_the_new_key_once_and_it_works(self):
        self.login(self.alice)

        response = self.client.post(reverse("api_token_create"), {"name": "newsroom script"})

        key = response.context["made"][1]
        self.assertContains(response, f'<code class="token" id="api-token">{key}</code>', html=True)
        self.assertContains(response, "it will not be shown again")
        self.assertIn("no-store", response["Cache-Control"])
        self.assertEqual(self.status_with(key), 200)
        self.assertEqual(self.status_with(self.alice_key), 200)  # the earlier token still works
        again = self.client.get(reverse("profile"))
        self.assertContains(again, "newsroom script")
        self.assertNotContains(again, key)

    def test_a_token_without_a_name_gets_one(self):
        self.login(self.alice)
        self.client.post(reverse("api_token_create"), {"name": "  "})
        self.assertTrue(ApiToken.objects.filter(user=self.alice, name="API token").exists())

    def test_a_user_without_tokens_is_offered_one(self):
        ApiToken.objects.filter(user=self.alice).delete()
        self.login(self.alice)

        page = self.client.get(reverse("profile"))

        self.assertContains(page, "You have no API token.")
        self.assertContains(page, 'id="make-token"')

    @override_settings(API_TOKENS_PER_USER=2)
    def test_past_the_limit_it_says_why_and_makes_none(self):
        api_token_create(user=self.alice, name="second")
        self.login(self.alice)

        self.assertContains(self.client.get(reverse("profile")), "revoke one to make another")
        response = self.client.post(reverse("api_token_create"), {"name": "third"})

        self.assertContains(response, "as many as an account may have")
        self.assertEqual(ApiToken.objects.filter(user=self.alice).count(), 2)
        self.assertIsNone(response.context["made"])

    def test_sending_the_form_again_makes_no_second_token_and_says_where_the_first_went(self):
        self.login(self.alice)
        form_id = self.client.get(reverse("profile")).context["form"]["form_id"].value()
        sent = {"name": "newsroom script", "form_id": form_id}
        first = self.client.post(reverse("api_token_create"), sent)

        again = self.client.post(reverse("api_token_create"), sent)  # the browser's reload

        self.assertIsNotNone(first.context["made"])
        self.assertIsNone(again.context["made"])
        prefix = ApiToken.objects.get(user=self.alice, name="newsroom script").prefix
        self.assertContains(again, f"the first sending made the token “newsroom script” ({prefix}…)")
        self.assertEqual(ApiToken.objects.filter(user=self.alice, name="newsroom script").count(), 1)
        new_form_id = again.context["form"]["form_id"].value()
        self.assertNotEqual(new_form_id, form_id)  # the form shown now makes a token
        third = self.client.post(reverse("api_token_create"), {"name": "second script", "form_id": new_form_id})
        self.assertIsNotNone(third.context["made"])

    @override_settings(API_TOKENS_PER_USER=2)
    def test_a_form_sent_twice_at_the_last_free_place_says_it_was_sent_twice_not_that_the_account_is_full(self):
        self.login(self.alice)  # alice holds 1 token: room for one more
        form_id = self.client.get(reverse("profile")).context["form"]["form_id"].value()
        sent = {"name": "last one", "form_id": form_id}
        self.client.post(reverse("api_token_create"), sent)

        again = self.client.post(reverse("api_token_create"), sent)

        self.assertContains(again, "This form was sent twice")
        self.assertNotContains(again, "revoke one you no longer use")  # TooManyTokens' refusal

    def test_a_token_that_could_not_be_kept_leaves_the_form_free_to_be_sent_again(self):
        self.login(self.alice)
        sent = {"name": "retry me", "form_id": "ab" * 16}
        from django.core.cache import cache

        real_set = cache.set

        def set_then_fail(*args, **kwargs):  # the marker is written, then the commit fails
            real_set(*args, **kwargs)
            raise RuntimeError("database gone")

        with mock.patch.object(cache, "set", side_effect=set_then_fail):
            with self.assertRaises(RuntimeError):
                self.client.post(reverse("api_token_create"), sent)

        again = self.client.post(reverse("api_token_create"), sent)

        self.assertIsNotNone(again.context["made"])

    def test_it_only_accepts_post(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(reverse("api_token_create")).status_code, 405)
        self.assertEqual(ApiToken.objects.filter(user=self.alice).count(), 1)


class ApiTokenRevokeTests(BaseTestCase):
    analyses = reverse("detection_api:analyses")

    def revoke_url(self, user) -> str:
        return reverse("api_token_revoke", args=[ApiToken.objects.get(user=user).pk])

    def test_it_revokes_the_token_at_once_and_says_so(self):
        self.login(self.alice)

        response = self.client.post(self.revoke_url(self.alice), follow=True)

        self.assertContains(response, "The token “alice&#x27;s script”")
        self.assertContains(response, "refused now")
        api = self.client_class()
        self.assertEqual(api.get(self.analyses, HTTP_AUTHORIZATION=f"Token {self.alice_key}").status_code, 401)

    def test_another_users_token_is_not_found_and_keeps_working(self):
        self.login(self.alice)

        response = self.client.post(self.revoke_url(self.bob))

        self.assertEqual(response.status_code, 404)
        api = self.client_class()
        self.assertEqual(api.get(self.analyses, HTTP_AUTHORIZATION=f"Token {self.bob_key}").status_code, 200)

    def test_it_only_accepts_post(self):
        self.login(self.alice)
        self.assertEqual(self.client.get(self.revoke_url(self.alice)).status_code, 405)
        self.assertTrue(ApiToken.objects.filter(user=self.alice).exists())


class ProfileTokenControlsTests(BaseTestCase):
    def test_no_browser_or_proxy_may_keep_the_profile_page(self):
        self.login(self.alice)
        response = self.client.get(reverse("profile"))
        self.assertIn("no-store", response["Cache-Control"])
        self.assertIn("private", response["Cache-Control"])

    def test_it_offers_to_copy_a_new_key_and_asks_before_revoking(self):
        self.login(self.alice)
        response = self.client.post(reverse("api_token_create"), {"name": "x"})
        self.assertContains(response, 'id="copy-token"')
        self.assertContains(response, "js/profile.js")
        self.assertContains(response, "<summary>Revoke<span class=\"visually-hidden\">", count=2)
        self.assertContains(response, "Yes, revoke “x” (")
        self.assertContains(response, "Scripts that send this token are refused at once.")


class PasswordResetTests(BaseTestCase):
    def test_it_mails_a_reset_link_to_a_known_address(self):
        response = self.client.post(reverse("password_reset"), {"email": "alice@example.org"})

        self.assertRedirects(response, reverse("password_reset_done"))
        self.assertEqual(len(mail.outbox), 1)
        self.assertIn("/accounts/password/reset/", mail.outbox[0].body)
        self.assertEqual(mail.outbox[0].subject, "Choose a new password for the deepfake detector")

    def test_it_says_the_same_and_mails_nothing_for_an_unknown_address(self):
        response = self.client.post(reverse("password_reset"), {"email": "nobody@example.org"})

        self.assertRedirects(response, reverse("password_reset_done"))
        self.assertEqual(mail.outbox, [])

    def test_the_new_password_page_says_the_token_is_replaced_apart_from_the_rules(self):
        self.client.post(reverse("password_reset"), {"email": "alice@example.org"})
        link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", mail.outbox[0].body).group(1)

        page = self.client.get(link, follow=True)  # Django moves the token out of the address

        self.assertContains(page, "Setting a new password also revokes your API tokens")
        rules = page.context["form"].fields["new_password1"].help_text
        self.assertIn("at least 8 characters", rules)
        self.assertNotIn("API token", rules)

    def test_the_login_page_links_to_it(self):
        self.assertContains(self.client.get(reverse("login")), reverse("password_reset"))


class AccountDeleteTests(BaseTestCase):
    url = reverse("account_delete")

    def test_the_profile_links_to_it_and_the_page_says_what_goes(self):
        self.login(self.alice)

        self.assertContains(self.client.get(reverse("profile")), self.url)
        page = self.client.get(self.url)

        self.assertContains(page, "every analysis")
        self.assertContains(page, 'name="password"')

    def test_with_the_password_it_deletes_the_account_its_analyses_files_and_tokens_and_nobody_elses(self):
        alices = [self.done_analysis_for(self.alice), self.analysis_for(self.alice)]
        alices_files = [p for p in self.stored_files() if any(a.pk.hex in str(p) for a in alices)]
        others = [p for p in self.stored_files() if p not in alices_files]
        self.assertTrue(alices_files and others)
        self.login(self.alice)

        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(self.url, {"password": PASSWORD}, follow=True)

        self.assertRedirects(response, reverse("login"))
        self.assertContains(response, "Your account was deleted")
        self.assertFalse(get_user_model().objects.filter(username="alice").exists())
        self.assertFalse(Analysis.objects.filter(pk__in=[a.pk for a in alices]).exists())
        self.assertFalse(any(p.exists() for p in alices_files))
        self.assertFalse(any(folder.name in {a.pk.hex for a in alices} for folder in self.stored_folders()))
        self.assertTrue(all(p.exists() for p in others))
        self.assertFalse(ApiToken.objects.filter(user_id=self.alice.pk).exists())
        api = self.client_class()
        analyses = reverse("detection_api:analyses")
        self.assertEqual(api.get(analyses, HTTP_AUTHORIZATION=f"Token {self.alice_key}").status_code, 401)
        self.assertEqual(api.get(analyses, HTTP_AUTHORIZATION=f"Token {self.bob_key}").status_code, 200)
        self.assertTrue(Analysis.objects.filter(pk=self.bobs_analysis.pk).exists())
        self.assertRedirects(self.client.get(reverse("profile")), f"{reverse('login')}?next={reverse('profile')}")

    def test_a_wrong_password_deletes_nothing_and_counts_as_a_failed_log_in(self):
        self.login(self.alice)

        response = self.client.post(self.url, {"password": "not it"})

        self.assertContains(response, "That is not your password.")
        self.assertTrue(get_user_model().objects.filter(username="alice").exists())
        with override_settings(LOGIN_FAILURE_LIMIT=2):
            self.client.post(self.url, {"password": "not it either"})
            refused = self.client.post(self.url, {"password": PASSWORD})
        self.assertContains(refused, "Too many failed log-in attempts", status_code=429)
        self.assertTrue(get_user_model().objects.filter(username="alice").exists())

    def test_anonymous_visitors_are_sent_to_log_in(self):
        response = self.client.post(self.url, {"password": PASSWORD})
        self.assertRedirects(response, f"{reverse('login')}?next={self.url}")


@override_settings(EMAIL_CHANGE_BY_LINK=True)
class EmailChangeTests(BaseTestCase):
    url = reverse("email_change")

    def setUp(self) -> None:
        super().setUp()
        self.login(self.alice)

    def ask(self, email: str, password: str = PASSWORD, **kwargs):
        return self.client.post(self.url, {"email": email, "password": password}, **kwargs)

    def link(self) -> str:
        return re.search(r"http://testserver(/accounts/email/confirm/\S+/)", mail.outbox[-1].body).group(1)

    def alices_email(self) -> str:
        return get_user_model().objects.get(pk=self.alice.pk).email

    def test_the_profile_links_to_it_and_the_page_asks_for_the_address_and_the_password(self):
        self.assertContains(self.client.get(reverse("profile")), self.url)
        page = self.client.get(self.url)

        self.assertContains(page, 'name="email"')
        self.assertContains(page, 'name="password"')
        self.assertContains(page, "alice@example.org")

    def test_the_new_address_gets_a_link_and_the_old_one_stays_until_it_is_opened(self):
        response = self.ask("alice.new@example.org", follow=True)

        self.assertRedirects(response, reverse("profile"))
        self.assertContains(response, "We sent a link to alice.new@example.org")
        self.assertEqual([m.to for m in mail.outbox], [["alice.new@example.org"]])
        self.assertEqual(mail.outbox[0].subject, "Confirm your new e-mail address for the deepfake detector")
        self.assertEqual(self.alices_email(), "alice@example.org")

        page = self.client.get(self.link())  # a mail scanner's visit changes nothing
        self.assertContains(page, "Use alice.new@example.org")
        self.assertEqual(self.alices_email(), "alice@example.org")

        with self.captureOnCommitCallbacks(execute=True):
            confirmed = self.client.post(self.link(), follow=True)
        self.assertContains(confirmed, "Your email address is now alice.new@example.org.")
        self.assertEqual(self.alices_email(), "alice.new@example.org")
        notice = mail.outbox[-1]
        self.assertEqual(notice.to, ["alice@example.org"])
        self.assertIn("was changed", notice.subject)
        self.assertIn("alice.new@example.org", notice.body)

    def test_the_profile_says_where_the_link_went_the_same_whether_or_not_the_address_is_taken(self):
        pages = {}
        for address in ("alice.new@example.org", "bob@example.org"):  # bob's: he is mailed a notice
            self.ask(address)
            pages[address] = self.client.get(reverse("profile"))

        for address, page in pages.items():
            self.assertContains(page, f"A link to change it to <strong>{address}</strong> was sent at")
        self.assertEqual(self.alices_email(), "alice@example.org")

    def test_a_new_password_takes_the_pending_link_off_the_profile_as_it_voids_the_link(self):
        self.ask("alice.new@example.org")
        self.assertContains(self.client.get(reverse("profile")), 'id="email-pending"')

        user = get_user_model().objects.get(pk=self.alice.pk)
        user.set_password("another-long-pass-phrase-2")
        user.save()
        self.client.force_login(user)

        self.assertNotContains(self.client.get(reverse("profile")), 'id="email-pending"')

    def test_a_link_works_once(self):
        self.ask("alice.new@example.org")
        link = self.link()
        self.client.post(link)

        again = self.client.post(link)

        self.assertContains(again, "This link was used already: your address is alice.new@example.org.", status_code=400)
        self.assertEqual(self.alices_email(), "alice.new@example.org")

    def test_a_used_link_does_not_work_again_after_the_address_is_changed_back(self):
        self.ask("alice.new@example.org")
        there = self.link()
        self.client.post(there)
        self.ask("alice@example.org")
        self.client.post(self.link())
        self.assertEqual(self.alices_email(), "alice@example.org")

        again = self.client.post(there)

        self.assertContains(again, "This link was used already", status_code=400)
        self.assertEqual(self.alices_email(), "alice@example.org")

    def test_an_unused_link_does_not_come_back_when_the_address_is_changed_back(self):
        self.ask("typo@exmaple.org")
        unused = self.link()
        self.ask("alice.new@example.org")
        self.client.post(self.link())
        self.ask("alice@example.org")
        self.client.post(self.link())
        self.assertEqual(self.alices_email(), "alice@example.org")

        page = self.client.get(unused)

        self.assertContains(page, "This link was used already, or your address", status_code=400)
        self.assertEqual(self.client.post(unused).status_code, 400)
        self.assertEqual(self.alices_email(), "alice@example.org")

    def test_a_new_password_voids_the_links_sent_before_it(self):
        self.ask("alice.new@example.org")
        link = self.link()
        user = get_user_model().objects.get(pk=self.alice.pk)
        user.set_password("another long passphrase 7")
        user.save()
        self.client.force_login(user)

        response = self.client.post(link)

        self.assertContains(response, "password changed since it was sent", status_code=400)
        self.assertEqual(self.alices_email(), "alice@example.org")

    def test_a_link_made_before_another_change_no_longer_works(self):
        self.ask("first@example.org")
        first = self.link()
        self.ask("second@example.org")
        self.client.post(self.link())

        response = self.client.post(first)

        self.assertEqual(response.status_code, 400)
        self.assertEqual(self.alices_email(), "second@example.org")

    def test_an_expired_or_altered_link_changes_nothing(self):
        self.ask("alice.new@example.org")
        link = self.link()
        later = time.time() + 25 * 3600

        with mock.patch("django.core.signing.time.time", return_value=later):
            expired = self.client.post(link)
        altered = self.client.post(link.replace("/confirm/", "/confirm/x"))

        self.assertContains(expired, "broken or has expired", status_code=400)
        self.assertContains(altered, "broken or has expired", status_code=400)
        self.assertEqual(self.alices_email(), "alice@example.org")

    def test_another_account_cannot_use_the_link(self):
        self.ask("alice.new@example.org")
        link = self.link()
        self.login(self.bob)

        response = self.client.post(link)

        self.assertContains(response, "made for another account", status_code=400)
        self.assertEqual(self.alices_email(), "alice@example.org")
        self.assertEqual(get_user_model().objects.get(pk=self.bob.pk).email, "bob@example.org")

    def test_a_logged_out_visitor_is_asked_to_log_in_first_and_comes_back_to_the_link(self):
        self.ask("alice.new@example.org")
        link = self.link()
        self.client.logout()

        response = self.client.get(link)

        self.assertRedirects(response, f"{reverse('login')}?next={link}", fetch_redirect_response=False)
        login_page = self.client.get(response["Location"])
        self.assertContains(login_page, "Log in to the account that asked for this email address to confirm it.")

    def test_a_wrong_password_sends_nothing_and_counts_as_a_failed_log_in(self):
        response = self.ask("alice.new@example.org", password="not it")

        self.assertContains(response, "That is not your password.")
        self.assertEqual(mail.outbox, [])
        with override_settings(LOGIN_FAILURE_LIMIT=2):
            self.ask("alice.new@example.org", password="not it either")
            refused = self.ask("alice.new@example.org")
        self.assertContains(refused, "Too many failed log-in attempts", status_code=429)
        self.assertEqual(mail.outbox, [])

    @override_settings(EMAIL_CHANGE_BY_LINK=False)  # a site without mail says so at once
    def test_an_address_another_account_uses_is_refused_in_any_case(self):
        response = self.ask("BOB@example.org")

        self.assertContains(response, "An account with this email address already exists.")
        self.assertEqual(self.alices_email(), "alice@example.org")

    def test_an_address_another_account_uses_gets_its_owner_a_notice_and_the_page_tells_nothing(self):
        response = self.ask("BOB@example.org", follow=True)

        self.assertContains(response, "We sent a link to BOB@example.org")
        self.assertNotContains(response, "already exists")
        [notice] = mail.outbox
        self.assertEqual(notice.to, ["bob@example.org"])
        self.assertEqual(notice.subject, "Someone asked to use your e-mail address on the deepfake detector")
        self.assertIn("for another account", notice.body)
        self.assertIn("It belongs to your account, bob", notice.body)
        self.assertNotIn("alice", notice.body)
        self.assertNotIn("/accounts/email/confirm/", notice.body)
        self.assertEqual(self.alices_email(), "alice@example.org")

    def test_an_address_taken_before_the_link_is_opened_is_refused_then(self):
        self.ask("carol@example.org")
        get_user_model().objects.create_user("carol", "carol@example.org", PASSWORD)

        response = self.client.post(self.link())

        self.assertContains(response, "An account with this email address already exists.", status_code=400)
        self.assertEqual(self.alices_email(), "alice@example.org")

    @override_settings(PASSWORD_RESET_LIMIT=2)
    def test_past_the_hourly_limit_no_more_links_are_sent(self):
        self.ask("one@example.org")
        self.ask("two@example.org")

        refused = self.ask("three@example.org")

        self.assertContains(refused, "Too many new addresses were tried lately", status_code=429)
        self.assertEqual(refused["Retry-After"], "3600")
        self.assertEqual(len(mail.outbox), 2)

    @override_settings(PASSWORD_RESET_LIMIT=2)
    def test_people_behind_one_network_do_not_use_up_each_others_changes(self):
        self.ask("one@example.org")
        self.ask("two@example.org")
        self.login(self.bob)

        response = self.ask("bob.new@example.org", follow=True)

        self.assertContains(response, "We sent a link to bob.new@example.org")
        self.assertEqual(len(mail.outbox), 3)

    @override_settings(PASSWORD_RESET_LIMIT=2)
    def test_no_address_gets_more_links_an_hour_than_the_limit_from_one_network_whatever_its_accounts(self):
        self.ask("target@example.org")
        self.login(self.bob)
        self.ask("target@example.org")
        carol = get_user_model().objects.create_user("carol", "carol@example.org", PASSWORD)
        self.login(carol)

        refused = self.ask("target@example.org")

        self.assertContains(refused, "Too many new addresses were tried lately", status_code=429)
        self.assertEqual(len(mail.outbox), 2)

    @override_settings(PASSWORD_RESET_LIMIT=2, EMAIL_CHANGE_BY_LINK=False)
    def test_past_a_few_taken_addresses_an_hour_it_no_longer_tells_whose_address_is_taken(self):
        for _ in range(2):
            self.assertContains(self.ask("bob@example.org"), "An account with this email address already exists.")

        refused = self.ask("carol@example.org")

        self.assertContains(refused, "Too many new addresses were tried lately", status_code=429)
        self.assertNotContains(refused, "already exists", status_code=429)
        self.assertEqual(mail.outbox, [])

    @override_settings(PASSWORD_RESET_LIMIT=2, EMAIL_CHANGE_BY_LINK=False)
    def test_a_network_learns_whose_address_is_whose_only_a_few_times_an_hour_whatever_its_accounts(self):
        self.assertContains(self.ask("bob@example.org"), "already exists")
        carol = get_user_model().objects.create_user("carol", "carol@example.org", PASSWORD)
        self.login(carol)
        self.assertContains(self.ask("bob@example.org"), "already exists")
        dave = get_user_model().objects.create_user("dave", "dave@example.org", PASSWORD)
        self.login(dave)

        refused = self.ask("alice@example.org")

        self.assertContains(refused, "Too many new addresses were tried lately", status_code=429)
        self.assertNotContains(refused, "already exists", status_code=429)

    def test_a_mail_server_that_fails_gets_a_clear_answer_and_changes_nothing(self):
        with mock.patch("accounts.services.send_mail", side_effect=ConnectionRefusedError(111, "refused")):
            with self.assertLogs("accounts.views", "ERROR"):
                response = self.ask("alice.new@example.org")

        self.assertContains(response, "We could not send e-mail just now.", status_code=503)
        self.assertEqual(response["Retry-After"], "300")
        self.assertEqual(self.alices_email(), "alice@example.org")

    @override_settings(EMAIL_CHANGE_BY_LINK=False)
    def test_a_site_that_sends_no_email_changes_the_address_at_once(self):
        page = self.client.get(self.url)
        self.assertContains(page, "this site sends no e-mail")

        response = self.ask("alice.new@example.org", follow=True)

        self.assertContains(response, "Your email address is now alice.new@example.org.")
        self.assertEqual(self.alices_email(), "alice.new@example.org")
        self.assertEqual(mail.outbox, [])
