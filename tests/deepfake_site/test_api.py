"""A fuzz of the whole API from its own OpenAPI schema (schemathesis), over a live server.

Bounded: a fixed seed and at most MAX_EXAMPLES generated requests per operation (a few
hundred in all). Every answer must be a documented status, never a 5xx, with the documented
content type and a body that matches the schema.
"""

from __future__ import annotations

import logging
from collections import Counter
from functools import partial
from unittest import mock

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import api_token_create, user_create
from detection import wait
from tests.detection.base import PASSWORD, astronaut_jpeg

logger = logging.getLogger(__name__)

MAX_EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def settings_override(tmp_path):
    """Uploads go to a temporary folder; `?wait=` answers at once (no worker runs here)."""
    from django.test import override_settings

    wait_at_once = partial(wait.analysis_wait, seconds=0)
    with (
        override_settings(MEDIA_ROOT=str(tmp_path), PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]),
        mock.patch("detection.api.wait.analysis_wait", lambda **kw: wait_at_once(**{**kw, "seconds": 0})),
    ):
        yield


@pytest.fixture
def fuzzer_token(transactional_db, settings_override) -> str:
    """A user with one finished-looking upload, so that reads find something."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from detection.services import analysis_create

    user = user_create(username="fuzzer", email="fuzzer@example.org", password=PASSWORD)
    with mock.patch("detection.services.async_task"):
        analysis_create(owner=user, file=SimpleUploadedFile("face.jpg", astronaut_jpeg()))
    return api_token_create(user=user, name="fuzzer")[1]


def test_the_api_answers_every_generated_request_as_its_schema_says(live_server, fuzzer_token):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    # Revoking the token the requests are sent with goes last: after it, every request gets 401.
    operations.sort(key=lambda operation: operation.label == "DELETE /api/v1/auth/token/")
    assert operations[-1].label == "DELETE /api/v1/auth/token/"
    headers = {"Authorization": f"Token {fuzzer_token}"}
    sent = Counter()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case):
            sent[operation.label] += 1
            case.call_and_validate(headers=headers, checks=CHECKS)

        fuzz()
    logger.info("schemathesis: %d requests over %d operations: %s", sum(sent.values()), len(sent), dict(sent))
    assert len(sent) == len(operations) and sum(sent.values()) >= 5 * len(operations)
