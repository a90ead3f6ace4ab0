from django.test import override_settings
from django.urls import reverse

from accounts.models import ApiToken, key_digest
from accounts.services import api_token_create, api_token_log_in
from tests.detection.base import PASSWORD, BaseTestCase, throttle_rates


class TokenCreateApiTests(BaseTestCase):
    url = reverse("accounts_api:token")
    analyses = reverse("detection_api:analyses")

    def works(self, key: str) -> bool:
        return self.client_class().get(self.analyses, HTTP_AUTHORIZATION=f"Token {key}").status_code == 200

    def test_it_returns_a_new_token_that_works_named_as_asked(self):
        response = self.client.post(self.url, {"username": "alice", "password": PASSWORD, "name": "newsroom cron"})

        self.assertEqual(response.status_code, 200)
        answer = response.json()
        self.assertEqual(sorted(answer), ["created", "name", "token"])
        self.assertEqual(answer["name"], "newsroom cron")
        self.assertTrue(self.works(answer["token"]))
        made = ApiToken.objects.get(user=self.alice, name="newsroom cron")
        self.assertEqual(made.made_by, ApiToken.LOG_IN)

    def test_no_browser_or_proxy_may_keep_the_answer_with_the_new_key(self):
        response = self.client.post(self.url, {"username": "alice", "password": PASSWORD})

        self.assertEqual(response.status_code, 200)
        self.assertIn("no-store", response.headers["Cache-Control"])

    def test_each_log_in_makes_its_own_token_and_the_earlier_ones_keep_working(self):
        first = self.client.post(self.url, {"username": "alice", "password": PASSWORD}).json()["token"]
        second = self.client.post(self.url, {"username": "alice", "password": PASSWORD}).json()["token"]

        self.assertNotEqual(first, second)
        self.assertTrue(self.works(first) and self.works(second) and self.works(self.alice_key))
        self.assertEqual(ApiToken.objects.filter(user=self.alice, name="API log-in").count(), 2)

    def test_the_database_keeps_only_a_digest_of_the_key(self):
        key = self.client.post(self.url, {"username": "alice", "password": PASSWORD}).json()["token"]

        stored = ApiToken.objects.get(digest=key_digest(key))
        self.assertEqual(stored.prefix, key[:6])
        self.assertNotIn(key, [value for row in ApiToken.objects.values() for value in map(str, row.values())])

    def test_it_accepts_json(self):
        response = self.client.post(
            self.url, {"username": "alice", "password": PASSWORD}, content_type="application/json"
        )
        self.assertTrue(self.works(response.json()["token"]))

    def test_malformed_json_gets_a_400_with_the_same_shape_as_any_other(self):
        response = self.client.post(self.url, '{"username": "alice",', content_type="application/json")

        self.assertEqual(response.status_code, 400)
        self.assertTrue(response.json()["detail"].startswith("JSON parse error"), response.json())
        self.assertEqual(response.json()["errors"], {})

    @override_settings(API_TOKENS_PER_USER=3)
    def test_past_the_limit_a_log_in_replaces_the_log_in_token_used_least_lately_never_a_profile_one(self):
        used_lately = api_token_log_in(user=self.alice)[1]
        unused = api_token_log_in(user=self.alice)[1]  # alice now holds 3: her script's and these two
        self.assertTrue(self.works(used_lately))

        newest = self.client.post(self.url, {"username": "alice", "password": PASSWORD}).json()["token"]

        self.assertFalse(self.works(unused))
        self.assertTrue(self.works(newest) and self.works(used_lately) and self.works(self.alice_key))
        self.assertEqual(ApiToken.objects.filter(user=self.alice).count(), 3)

    @override_settings(API_TOKENS_PER_USER=2)
    def test_it_refuses_with_a_reason_when_every_token_was_made_on_the_profile_page(self):
        api_token_create(user=self.alice, name="second")

        response = self.client.post(self.url, {"username": "alice", "password": PASSWORD})

        self.assertEqual(response.status_code, 400)
        self.assertIn("revoke one you no longer use", response.json()["detail"])
        self.assertEqual(ApiToken.objects.filter(user=self.alice).count(), 2)

    def test_it_refuses_a_wrong_password_with_a_json_error(self):
        response = self.client.post(self.url, {"username": "alice", "password": "wrong"})

        self.assertEqual(response.status_code, 400)
        self.assertEqual(
            response.json()["detail"], "Unable to log in with this username and password."
        )
        self.assertNotIn("token", response.json())

    def test_it_refuses_missing_fields(self):
        response = self.client.post(self.url, {"username": "alice"})

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["detail"], "password: This field is required.")
        self.assertEqual(response.json()["errors"], {"password": ["This field is required."]})

    def test_it_throttles_repeated_attempts(self):
        with throttle_rates(token="2/minute"):
            for _ in range(2):
                self.client.post(self.url, {"username": "alice", "password": "wrong"})
            response = self.client.post(self.url, {"username": "alice", "password": PASSWORD})

        self.assertEqual(response.status_code, 429)
        self.assertRegex(response.json()["detail"], r"^Too many log-in attempts from your address\. Try again in \d+ seconds?\.$")
        self.assertGreaterEqual(int(response.headers["Retry-After"]), 1)

    def test_only_a_log_in_counts_in_the_log_in_throttle_not_a_get_or_options(self):
        with throttle_rates(token="2/minute"):
            for _ in range(3):
                self.client.get(self.url)
                self.client.options(self.url)
            response = self.client.post(self.url, {"username": "alice", "password": PASSWORD})

        self.assertEqual(response.status_code, 200)

    def test_sending_a_valid_token_does_not_escape_the_log_in_throttle(self):
        with throttle_rates(token="2/minute"):
            for _ in range(2):
                self.client.post(self.url, {"username": "bob", "password": "wrong"}, HTTP_AUTHORIZATION=f"Token {self.alice_key}")
            response = self.client.post(self.url, {"username": "bob", "password": PASSWORD}, HTTP_AUTHORIZATION=f"Token {self.alice_key}")

        self.assertEqual(response.status_code, 429)

    def test_an_ipv6_client_counts_as_its_64_in_the_log_in_throttle(self):
        with throttle_rates(token="2/minute"):
            for host in ("1", "2"):
                self.client.post(self.url, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR=f"2001:db8:1:2::{host}")
            response = self.client.post(self.url, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="2001:db8:1:2::3")

        self.assertEqual(response.status_code, 429)


class TokenRevokeApiTests(BaseTestCase):
    url = reverse("accounts_api:token")
    analyses = reverse("detection_api:analyses")

    def test_a_script_revokes_the_token_it_sends_and_only_that_one(self):
        other = api_token_create(user=self.alice, name="other script")[1]

        response = self.client.delete(self.url, HTTP_AUTHORIZATION=f"Token {self.alice_key}")

        self.assertEqual(response.status_code, 204)
        self.assertEqual(self.client.get(self.analyses, HTTP_AUTHORIZATION=f"Token {self.alice_key}").status_code, 401)
        self.assertEqual(self.client.get(self.analyses, HTTP_AUTHORIZATION=f"Token {other}").status_code, 200)
        self.assertEqual(self.client.get(self.analyses, HTTP_AUTHORIZATION=f"Token {self.bob_key}").status_code, 200)

    def test_it_needs_a_token_even_from_a_logged_in_browser(self):
        self.login(self.alice)

        response = self.client.delete(self.url)

        self.assertEqual(response.status_code, 401)
        self.assertEqual(ApiToken.objects.filter(user=self.alice).count(), 1)

    def test_a_revoked_or_made_up_token_gets_401(self):
        self.client.delete(self.url, HTTP_AUTHORIZATION=f"Token {self.alice_key}")

        for key in (self.alice_key, "0" * 40):
            response = self.client.delete(self.url, HTTP_AUTHORIZATION=f"Token {key}")
            self.assertEqual(response.status_code, 401)
            self.assertEqual(response.json()["detail"], "Invalid token.")


class TokenAuthenticationTests(BaseTestCase):
    analyses = reverse("detection_api:analyses")

    def test_a_token_of_an_inactive_user_is_refused(self):
        self.alice.is_active = False
        self.alice.save()

        response = self.client.get(self.analyses, HTTP_AUTHORIZATION=f"Token {self.alice_key}")

        self.assertEqual(response.status_code, 401)

    def test_using_a_token_notes_when_without_writing_on_every_request(self):
        self.assertIsNone(ApiToken.objects.get(user=self.alice).last_used)

        self.client.get(self.analyses, HTTP_AUTHORIZATION=f"Token {self.alice_key}")
        first = ApiToken.objects.get(user=self.alice).last_used
        self.client.get(self.analyses, HTTP_AUTHORIZATION=f"Token {self.alice_key}")

        self.assertIsNotNone(first)
        self.assertEqual(ApiToken.objects.get(user=self.alice).last_used, first)
