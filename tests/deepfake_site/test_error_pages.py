"""The site's own 404, 403 and 500 pages, as served with DEBUG off."""

from unittest import mock

from django.contrib.auth.models import AnonymousUser
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.views.defaults import permission_denied

from tests.detection.base import BaseTestCase


@override_settings(DEBUG=False)
class ErrorPageTests(BaseTestCase):
    def test_a_missing_page_gets_the_sites_404_page(self):
        response = self.client.get("/no/such/page/")
        self.assertEqual(response.status_code, 404)
        self.assertContains(response, "This page does not exist", status_code=404)
        self.assertContains(response, "Skip to the content", status_code=404)

    def test_someone_elses_analysis_gets_the_sites_404_page(self):
        self.login(self.alice)
        response = self.client.get(reverse("detection:detail", args=[self.bobs_analysis.pk]))
        self.assertContains(response, "This page does not exist", status_code=404)

    def test_a_crash_gets_the_sites_500_page(self):
        client = Client(raise_request_exception=False)
        client.force_login(self.alice)
        with mock.patch("detection.views.selectors.analysis_list", side_effect=RuntimeError("boom")):
            response = client.get(reverse("detection:history"))
        self.assertEqual(response.status_code, 500)
        self.assertContains(response, "Something went wrong on our side", status_code=500)
        self.assertNotContains(response, "boom", status_code=500)

    def test_a_forbidden_request_gets_the_sites_403_page(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)
        response = client.post(reverse("api_token_create"))
        self.assertContains(response, "This form expired", status_code=403)

    @override_settings(CSRF_COOKIE_SECURE=True)
    def test_a_form_sent_over_plain_http_without_the_https_only_cookie_is_told_to_use_https(self):
        client = Client(enforce_csrf_checks=True)  # a browser that refused the Secure cookie sends none
        client.force_login(self.alice)

        response = client.post(reverse("api_token_create"))

        self.assertContains(response, "This form expired", status_code=403)
        self.assertContains(response, "address that starts with <strong>https://</strong>", status_code=403)

    @override_settings(CSRF_COOKIE_SECURE=True)
    def test_over_https_the_page_blames_an_old_form_not_the_address(self):
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.alice)

        response = client.post(reverse("api_token_create"), secure=True)

        self.assertContains(response, "you logged in or out in another tab", status_code=403)
        self.assertNotContains(response, "https://</strong>", status_code=403)

    @override_settings(CSRF_COOKIE_SECURE=True)
    def test_behind_a_proxy_that_says_https_the_page_does_not_ask_for_https(self):
        from django.middleware.csrf import REASON_NO_CSRF_COOKIE

        from deepfake_site.errors import csrf_failure

        request = RequestFactory().post("/accounts/tokens/", HTTP_X_FORWARDED_PROTO="https")  # a proxy not trusted
        request.user = AnonymousUser()

        response = csrf_failure(request, reason=REASON_NO_CSRF_COOKIE)

        self.assertContains(response, "you logged in or out in another tab", status_code=403)
        self.assertNotContains(response, "https://</strong>", status_code=403)

    def test_the_403_page_renders_on_its_own(self):
        request = RequestFactory().get("/")
        request.user = AnonymousUser()
        response = permission_denied(request, exception=None)
        self.assertContains(response, "You are not allowed to see this page", status_code=403)

    def test_a_request_django_refuses_under_the_api_gets_a_400_shaped_as_the_apis(self):
        with self.assertLogs("django.security.DisallowedHost", "WARNING"):
            response = self.client.get(reverse("detection_api:analyses"), HTTP_HOST="not-this-site.example")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json(), {"detail": "Bad request.", "code": "bad_request", "errors": {}})
