"""The model card page's text: the card's Markdown split at its "## " headings, each section
rendered to HTML by Python-Markdown with tables and fenced code.

The card is a file in the repository, but raw HTML in it is still shown as text, never passed
through: Markdown's raw-HTML handling is switched off, so a `<script>` in the card reaches the page
as `&lt;script&gt;`. Nothing in the output needs inline styles (the site's Content-Security-Policy
forbids them): column alignment uses the `align` attribute, and each table sits in a
`div.table-scroll` that static/css/result.css lets scroll sideways on a phone.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree

import markdown
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify
from markdown.extensions import Extension
from markdown.extensions.tables import TableExtension
from markdown.treeprocessors import Treeprocessor


class _TableScrollBoxes(Treeprocessor):
    """Puts each table in a box of its own, which scrolls sideways instead of widening the page
    (focusable, so the keyboard can scroll it too)."""

    def run(self, root: etree.Element) -> None:
        for parent in list(root.iter()):
            for index, child in enumerate(list(parent)):
                if child.tag != "table":
                    continue
                box = etree.Element("div", {"class": "table-scroll", "tabindex": "0"})
                box.tail, child.tail = child.tail, None
                parent.remove(child)
                box.append(child)
                parent.insert(index, box)


class _CardExtension(Extension):
    """No raw HTML, tables in scroll boxes."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        # Without these two, `<tag>` in the card is text, which the serializer escapes.
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_TableScrollBoxes(md), "table_scroll_boxes", 5)


def card_markdown_to_html(text: str) -> SafeString:
    """One piece of the card as HTML, safe to put on the page (raw HTML in it escaped)."""
    md = markdown.Markdown(
        extensions=[TableExtension(use_align_attribute=True), "fenced_code", _CardExtension()],
        output_format="html",
    )
    # Safe: Markdown's own output, with raw HTML switched off above.
    return mark_safe(md.convert(text))


def card_sections(text: str) -> list[dict]:
    """The card split at its "## " headings, each with an id to link to (#known-limits), its
    title as plain text and its body as HTML. The first section is the card's "# " title and
    what comes before the first "## "."""
    sections = []
    for chunk in re.split(r"^## ", text, flags=re.MULTILINE):
        title, _, body = chunk.partition("\n")
        sections.append({
            "id": slugify(title),
            "title": title.strip("# ").replace("`", "").strip(),
            "html": card_markdown_to_html(body.strip()),
        })
    return sections
