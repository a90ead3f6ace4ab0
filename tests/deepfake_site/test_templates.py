"""Template mistakes no page test would notice."""

import re
from pathlib import Path

import pytest
from django.conf import settings

TEMPLATES = Path(settings.BASE_DIR) / "templates"


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_comment_spans_lines_where_django_would_print_it(template):
    """`{# ... #}` ends on its own line; one that does not is shown on the page as text (the
    upload page showed one to every visitor). Longer notes go in {% comment %}."""
    unclosed = [n for n, line in enumerate(template.read_text().splitlines(), 1) if re.search(r"\{#(?!.*#\})", line)]
    assert not unclosed, f"{template.name}: lines {unclosed}"
