from django.urls import reverse
from rest_framework.authtoken.models import Token

from tests.detection.base import PASSWORD, BaseTestCase, throttle_rates


class TokenCreateApiTests(BaseTestCase):
    url = reverse("accounts_api:token")

    def test_it_returns_the_users_token(self):
        response = self.client.post(self.url, {"username": "alice", "password": PASSWORD})

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"token": Token.objects.get(user=self.alice).key})

    def test_it_accepts_json(self):
        response = self.client.post(
            self.url, {"username": "alice", "password": PASSWORD}, content_type="application/json"
        )
        self.assertEqual(response.json()["token"], Token.objects.get(user=self.alice).key)

    def test_it_creates_a_token_when_the_user_has_none(self):
        Token.objects.filter(user=self.alice).delete()

        response = self.client.post(self.url, {"username": "alice", "password": PASSWORD})

        self.assertEqual(response.json()["token"], Token.objects.get(user=self.alice).key)

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
        self.assertIn("throttled", response.json()["detail"])
        self.assertIn("Retry-After", response.headers)
