import time
import unittest
from unittest import mock

from django.conf import settings
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
