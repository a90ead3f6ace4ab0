import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.detection.base import BaseTestCase

TEMPLATES = Path(settings.BASE_DIR) / "templates"
INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    "style element": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_needs_what_the_content_security_policy_forbids(template):
    text = template.read_text()
    found = [name for name, pattern in INLINE.items() if pattern.search(text)]
    assert not found, f"{template.name}: {', '.join(found)}"


class ContentSecurityPolicyTests(BaseTestCase):
    def test_every_page_carries_the_policy(self):
        self.login(self.alice)
        for url in [reverse("login"), reverse("detection:upload"), reverse("api-docs")]:
            with self.subTest(url=url):
                policy = self.client.get(url).headers["Content-Security-Policy"]
                self.assertIn("script-src 'self'", policy)
                self.assertIn("style-src 'self'", policy)
                self.assertIn("frame-ancestors 'none'", policy)
                self.assertNotIn("unsafe-inline", policy)

    def test_the_api_docs_page_loads_its_start_up_script_as_a_file(self):
        page = self.client.get(reverse("api-docs")).content.decode()
        self.assertIsNone(INLINE["inline script"].search(page))
        self.assertIsNone(INLINE["style element"].search(page))
        script_url = re.search(r'<script src="([^"]*\?script=[^"]*)"', page).group(1).replace("&amp;", "&")

        script = self.client.get(script_url)

        self.assertEqual(script.status_code, 200)
        self.assertIn("SwaggerUIBundle", script.content.decode())


def test_the_image_built_by_docker_compose_leaves_out_secrets_and_local_data():
    """`COPY . .` would otherwise put .env (SECRET_KEY, the passwords), a local database and
    its users' uploads into the image's layers."""
    ignored = (Path(settings.BASE_DIR) / ".dockerignore").read_text().split("\n")
    assert {".env", ".git", "media/", "db.sqlite3*", ".venv/", "var/"} <= set(ignored)
