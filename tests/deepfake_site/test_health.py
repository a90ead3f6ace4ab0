"""`/health/`: a load balancer's probe, 200 when the database, the cache and the queue answer,
503 naming the part that does not."""

from __future__ import annotations

from unittest import mock

from django.db import OperationalError
from django.test import TestCase, override_settings


class HealthTests(TestCase):
    def test_it_answers_200_when_everything_answers_without_a_log_in(self):
        response = self.client.get("/health/")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["status"], "ok")
        self.assertEqual(response.json()["checks"]["database"], "ok")
        self.assertEqual(response.json()["checks"]["cache"], "ok")
        self.assertEqual(response.json()["checks"]["migrations"], "ok")
        self.assertIn("no-store", response["Cache-Control"])

    def test_it_answers_503_naming_the_database_when_the_database_is_down_and_logs_why(self):
        with (
            mock.patch("deepfake_site.health.connection.cursor", side_effect=OperationalError("connection refused")),
            self.assertLogs("deepfake_site.health", "ERROR") as logs,
        ):
            response = self.client.get("/health/")

        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["status"], "unavailable")
        self.assertEqual(response.json()["checks"]["database"], "unreachable")
        self.assertEqual(response.json()["checks"]["cache"], "ok")
        self.assertNotIn("refused", response.content.decode())  # why goes to the log only
        self.assertIn("connection refused", "\n".join(logs.output))

    def test_it_answers_503_while_the_database_lacks_a_migration_of_this_code(self):
        with (
            mock.patch("deepfake_site.health._migrated", False),
            mock.patch("deepfake_site.health.migrations_missing", return_value=["detection.0099_new_column"]),
            self.assertLogs("deepfake_site.health", "ERROR") as logs,
        ):
            response = self.client.get("/health/")

        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["checks"]["migrations"], "behind")
        self.assertIn("detection.0099_new_column", "\n".join(logs.output))

    def test_it_answers_503_when_the_cache_loses_what_it_was_given(self):
        with mock.patch("deepfake_site.health.cache.get", return_value=None), self.assertLogs("deepfake_site.health", "ERROR"):
            response = self.client.get("/health/")

        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["checks"]["cache"], "unreachable")

    def test_with_the_redis_queue_it_asks_redis_too(self):
        with override_settings(Q_BROKER="redis", Q_CLUSTER={"redis": "redis://127.0.0.1:1/0"}), self.assertLogs("deepfake_site.health", "ERROR"):
            from deepfake_site import health

            health._redis_client.cache_clear()
            try:
                response = self.client.get("/health/")
            finally:
                health._redis_client.cache_clear()

        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["checks"]["queue"], "unreachable")

    def test_a_plain_http_probe_is_not_redirected_to_https(self):
        with override_settings(SECURE_SSL_REDIRECT=True):
            self.assertEqual(self.client.get("/health/").status_code, 200)
            self.assertEqual(self.client.get("/accounts/login/").status_code, 301)

    def test_it_only_reads(self):
        self.assertEqual(self.client.post("/health/").status_code, 405)
