"""What the site's log says about requests that are the client's doing: one warning line, not
an error with a traceback."""

from __future__ import annotations

import logging

from django.test import TestCase, override_settings


class LogTests(TestCase):
    @override_settings(DEBUG=False, ALLOWED_HOSTS=["site.example"])
    def test_a_request_for_a_host_the_site_does_not_serve_is_one_warning_without_a_traceback(self):
        with self.assertLogs("django.security.DisallowedHost", "DEBUG") as logs:
            response = self.client.get("/", HTTP_HOST="scanner.example")

        self.assertEqual(response.status_code, 400)
        [record] = logs.records
        self.assertEqual(record.levelno, logging.WARNING)
        self.assertIsNone(record.exc_info)
        self.assertIn("scanner.example", record.getMessage())
