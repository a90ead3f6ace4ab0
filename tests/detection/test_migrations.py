"""Migrations 0009 and 0010: the history's search compares folded names; analyses made before
them get theirs."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from detection.models import Analysis
from detection.selectors import analysis_list

BEFORE = [("detection", "0008_media_type_photo")]
AFTER = [("detection", "0010_fold_existing_names")]


@pytest.mark.django_db(transaction=True)
def test_an_analysis_made_before_folded_names_is_found_by_the_search():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="early", email="early@example.org")
    old.get_model("detection", "Analysis").objects.create(
        owner=user, file="x.jpg", original_name="ÉTÉ à Paris.jpg", media_type="image", size=1, sha256="0" * 64
    )

    executor = MigrationExecutor(connection)  # a fresh graph, as `migrate` would build
    executor.migrate(AFTER)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    owner = Analysis.objects.get().owner
    assert [a.original_name for a in analysis_list(owner=owner, name="été à")] == ["ÉTÉ à Paris.jpg"]
