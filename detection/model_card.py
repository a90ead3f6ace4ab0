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
    (focusable, so the keyboard can scroll it too, and so a region named after the heading above
    it: a screen reader would otherwise stop on an unnamed group)."""

    def __init__(self, md: markdown.Markdown, section: str):
        super().__init__(md)
        self.section = section

    def run(self, root: etree.Element) -> None:
        names: dict[int, str] = {}
        heading, count = self.section, 0
        for element in root.iter():  # in the order of the page
            if element.tag in ("h1", "h2", "h3", "h4"):
                heading, count = "".join(element.itertext()).strip(), 0
            elif element.tag == "table":
                count += 1
                names[id(element)] = f"Table {count}" + (f" of “{heading}”" if heading else "")
        for parent in list(root.iter()):
            for index, child in enumerate(list(parent)):
                if child.tag != "table":
                    continue
                box = etree.Element(
                    "div", {"class": "table-scroll", "tabindex": "0", "role": "region", "aria-label": names[id(child)]}
                )
                box.tail, child.tail = child.tail, None
                parent.remove(child)
                box.append(child)
                parent.insert(index, box)


class _CardExtension(Extension):
    """No raw HTML, tables in scroll boxes (named after `section`, the heading they are under,
    until a heading of their own)."""

    def __init__(self, section: str = ""):
        super().__init__()
        self.section = section

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        # Without these two, `<tag>` in the card is text, which the serializer escapes.
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_TableScrollBoxes(md, self.section), "table_scroll_boxes", 5)


def card_markdown_to_html(text: str, *, section: str = "") -> SafeString:
    """One piece of the card (under the heading `section`) as HTML, safe to put on the page
    (raw HTML in it escaped)."""
    md = markdown.Markdown(
        extensions=[TableExtension(use_align_attribute=True), "fenced_code", _CardExtension(section)],
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
        plain_title = title.strip("# ").replace("`", "").strip()
        sections.append({
            "id": slugify(title),
            "title": plain_title,
            "html": card_markdown_to_html(body.strip(), section=plain_title),
        })
    return sections
