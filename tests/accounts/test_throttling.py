import time
import unittest
from unittest import mock

from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from tests.detection.base import PASSWORD, BaseTestCase


@override_settings(LOGIN_FAILURE_LIMIT=3)
class LoginThrottlingTests(BaseTestCase):
    def attempt(self, url: str, password: str, *, address: str = "203.0.113.7", username: str = "alice"):
        return self.client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)

    def test_the_site_login_stops_checking_passwords_after_repeated_failures(self):
        url = reverse("login")
        for _ in range(3):
            self.assertContains(self.attempt(url, "wrong"), "Please enter a correct username", status_code=200)

        response = self.attempt(url, PASSWORD)

        self.assertContains(
            response, "Too many failed log-in attempts. Wait 15 minutes, then try again.", status_code=429
        )
        self.assertEqual(response["Retry-After"], str(15 * 60))
        self.assertContains(response, 'name="password"', status_code=429)  # the page, form and all
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_another_address_can_still_log_in_to_the_same_account(self):
        url = reverse("login")
        for _ in range(3):
            self.attempt(url, "wrong")

        response = self.attempt(url, PASSWORD, address="198.51.100.2")

        self.assertRedirects(response, reverse("detection:upload"), fetch_redirect_response=False)

    def test_one_address_cannot_try_many_accounts_either(self):
        url = reverse("login")
        for i in range(12):
            self.attempt(url, "wrong", username=f"user{i}")

        response = self.attempt(url, PASSWORD)

        self.assertContains(response, "Too many failed log-in attempts.", status_code=429)

    def test_the_password_change_page_counts_wrong_old_passwords_as_failed_log_ins(self):
        self.login(self.alice)
        url = reverse("password_change")
        new = {"new_password1": "another-Long-pass-9", "new_password2": "another-Long-pass-9"}
        for _ in range(3):
            wrong = self.client.post(url, {"old_password": "guess", **new}, REMOTE_ADDR="203.0.113.7")
            self.assertContains(wrong, "Your old password was entered incorrectly.")

        refused = self.client.post(url, {"old_password": PASSWORD, **new}, REMOTE_ADDR="203.0.113.7")

        self.assertContains(refused, "Too many failed log-in attempts.", status_code=429)
        self.assertEqual(refused["Retry-After"], str(15 * 60))
        self.assertTrue(User.objects.get(pk=self.alice.pk).check_password(PASSWORD))
        self.client.logout()
        self.assertContains(self.attempt(reverse("login"), PASSWORD), "Too many failed log-in attempts.", status_code=429)

    def test_a_success_before_the_limit_starts_the_count_again(self):
        url = reverse("login")
        for _ in range(2):
            self.attempt(url, "wrong")
        self.attempt(url, PASSWORD)
        self.client.logout()
        for _ in range(2):
            self.attempt(url, "wrong")

        self.assertRedirects(self.attempt(url, PASSWORD), reverse("detection:upload"), fetch_redirect_response=False)

    def test_the_admin_login_is_throttled_too(self):
        admin = self.alice
        admin.is_staff = True
        admin.save()
        url = reverse("admin:login")
        for _ in range(3):
            self.attempt(url, "wrong")

        response = self.attempt(url, PASSWORD)

        self.assertContains(response, "Too many failed log-in attempts.", status_code=429)
        self.assertContains(response, 'name="password"', status_code=429)
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_the_api_token_endpoint_is_throttled_per_account_too(self):
        url = reverse("accounts_api:token")
        for _ in range(3):
            self.assertEqual(self.attempt(url, "wrong").status_code, 400)

        response = self.attempt(url, PASSWORD)

        self.assertEqual(response.status_code, 429)
        self.assertEqual(response.json()["detail"], "Too many failed log-in attempts. Wait 15 minutes, then try again.")
        self.assertEqual(response["Retry-After"], str(15 * 60))

    @unittest.skipUnless(
        settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache"),
        "moves the file cache's clock; a Redis cache keeps its own",
    )
    def test_the_block_lasts_the_whole_window_after_the_last_failure(self):
        url = reverse("login")
        later = [0.0]
        real_time = time.time
        with mock.patch("time.time", lambda: real_time() + later[0]):
            for _ in range(3):
                self.attempt(url, "wrong")
            later[0] = 10 * 60  # past the cache's default 5 minutes, inside the 15 of the window
            blocked = self.attempt(url, PASSWORD)
            later[0] = 15 * 60 + 1
            after = self.attempt(url, PASSWORD)

        self.assertEqual(blocked.status_code, 429)
        self.assertRedirects(after, reverse("detection:upload"), fetch_redirect_response=False)

    def test_addresses_of_one_ipv6_network_count_as_one_client(self):
        url = reverse("login")
        for host in ("1", "2", "3"):  # a host hands itself a new address from its /64 each time
            self.attempt(url, "wrong", address=f"2001:db8:1:2::{host}")

        same_network = self.attempt(url, PASSWORD, address="2001:db8:1:2::99")
        other_network = self.attempt(url, PASSWORD, address="2001:db8:1:3::1")

        self.assertEqual(same_network.status_code, 429)
        self.assertRedirects(other_network, reverse("detection:upload"), fetch_redirect_response=False)


@override_settings(SIGNUP_LIMIT=2)
class SignupThrottlingTests(BaseTestCase):
    def sign_up(self, name: str, *, address: str = "203.0.113.7"):
        self.client.logout()
        return self.client.post(
            reverse("signup"),
            {"username": name, "email": f"{name}@example.org", "password1": PASSWORD, "password2": PASSWORD},
            REMOTE_ADDR=address,
        )

    def test_one_network_makes_only_so_many_accounts_an_hour(self):
        for name in ("carol", "dave"):
            self.assertEqual(self.sign_up(name).status_code, 302)

        refused = self.sign_up("eve")
        elsewhere = self.sign_up("frank", address="198.51.100.2")

        self.assertContains(refused, "Too many accounts were made", status_code=429)
        self.assertEqual(refused["Retry-After"], "3600")
        self.assertContains(refused, 'value="eve"', status_code=429)  # the form keeps what was typed
        self.assertFalse(User.objects.filter(username="eve").exists())
        self.assertEqual(elsewhere.status_code, 302)

    @override_settings(EMAIL_CHANGE_BY_LINK=False)  # with mail, sign-up tells nobody (test_views.py)
    def test_an_answer_that_an_address_is_taken_counts_and_past_the_limit_nothing_is_told(self):
        for _ in range(2):
            taken = self.client.post(
                reverse("signup"),
                {"username": "prober", "email": "alice@example.org", "password1": PASSWORD, "password2": PASSWORD},
                REMOTE_ADDR="203.0.113.7",
            )
            self.assertContains(taken, "An account with this email address already exists.")

        refused = self.client.post(
            reverse("signup"),
            {"username": "prober", "email": "bob@example.org", "password1": PASSWORD, "password2": PASSWORD},
            REMOTE_ADDR="203.0.113.7",
        )

        self.assertContains(refused, "Too many accounts were made, or taken addresses tried", status_code=429)
        self.assertNotContains(refused, "already exists", status_code=429)
        self.assertContains(refused, 'value="bob@example.org"', status_code=429)

    def test_a_refused_sign_up_does_not_count(self):
        self.sign_up("carol")
        self.client.logout()
        invalid = self.client.post(reverse("signup"), {"username": "x"}, REMOTE_ADDR="203.0.113.7")
        self.assertContains(invalid, "This field is required.")
        self.assertEqual(self.sign_up("dave").status_code, 302)


@override_settings(PASSWORD_RESET_LIMIT=2)
class PasswordResetThrottlingTests(BaseTestCase):
    def ask(self, email: str, *, address: str = "203.0.113.7"):
        return self.client.post(reverse("password_reset"), {"email": email}, REMOTE_ADDR=address)

    def test_one_network_asks_for_only_so_many_reset_mails_an_hour(self):
        self.ask("alice@example.org")
        self.ask("bob@example.org")

        refused = self.ask("alice@example.org")

        self.assertContains(refused, "Too many reset e-mails were asked for lately", status_code=429)
        self.assertEqual(refused["Retry-After"], "3600")
        self.assertEqual(len(mail.outbox), 2)

    def test_one_mailbox_gets_only_so_many_from_any_network_and_unknown_ones_count_the_same(self):
        for address in ("203.0.113.7", "198.51.100.2"):
            self.ask("alice@example.org", address=address)
            self.ask("nobody@example.org", address=address)

        for email in ("alice@example.org", "nobody@example.org"):
            self.assertEqual(self.ask(email, address="192.0.2.1").status_code, 429)
        self.assertEqual(len(mail.outbox), 2)


class ClientNetworkTests(BaseTestCase):
    def network(self, address: str) -> str:
        from django.test import RequestFactory

        from accounts.selectors import client_network

        return client_network(RequestFactory().get("/", REMOTE_ADDR=address))

    def test_what_counts_as_one_client(self):
        self.assertEqual(self.network("203.0.113.7"), "203.0.113.7")
        self.assertEqual(self.network("::ffff:203.0.113.7"), "203.0.113.7")  # IPv4 on a dual-stack socket
        self.assertEqual(self.network("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64")
        self.assertEqual(self.network("fe80::1%eth0"), "fe80::/64")
        self.assertEqual(self.network("not an address"), "not an address")


class PasswordResetWithoutMailTests(BaseTestCase):
    @override_settings(PASSWORD_RESET_BY_EMAIL=False)
    def test_a_site_that_cannot_send_mail_says_whom_to_ask_and_sends_nothing(self):
        page = self.client.get(reverse("password_reset"))
        posted = self.client.post(reverse("password_reset"), {"email": "alice@example.org"})

        self.assertContains(page, "This site is not set up to send e-mail")
        self.assertNotContains(page, 'name="email"')
        self.assertContains(posted, "This site is not set up to send e-mail")
        self.assertEqual(mail.outbox, [])
