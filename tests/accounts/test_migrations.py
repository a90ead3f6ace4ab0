"""Migration 0003: the API keys DRF's authtoken kept in plain text become digests."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse

from accounts.models import ApiToken, key_digest

BEFORE = [("accounts", "0002_api_token"), ("authtoken", "0004_alter_tokenproxy_options")]
AFTER = [("accounts", "0003_api_tokens_from_authtoken")]
PLAIN_KEY = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.django_db(transaction=True)
def test_a_key_kept_in_plain_text_keeps_working_and_is_kept_no_more():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="early", email="early@example.org")
    old.get_model("authtoken", "Token").objects.create(key=PLAIN_KEY, user=user)

    executor = MigrationExecutor(connection)  # a fresh graph, as `migrate` would build
    executor.migrate(AFTER)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
    token = ApiToken.objects.get(user_id=user.pk)
    assert (token.digest, token.prefix, token.name) == (key_digest(PLAIN_KEY), PLAIN_KEY[:6], "API token")
    response = Client().get(reverse("detection_api:analyses"), HTTP_AUTHORIZATION=f"Token {PLAIN_KEY}")
    assert response.status_code == 200
