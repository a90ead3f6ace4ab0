"""Every colour pair the style sheets define reaches WCAG AA contrast (4.5:1) for small text.

The rules are read from static/css/*.css: a rule that sets both a text colour and a background is
checked as that pair; a rule that sets only a background is checked against the text colour it
inherits (white in buttons, the body's ink elsewhere). Text colours used on the page and card backgrounds (muted text, links, errors) are
checked explicitly.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "static" / "css"
AA = 4.5
PAGE = "#f6f7f9"  # body background
CARD = "#ffffff"  # cards, tables, the header


def declarations(text: str) -> list[tuple[str, dict[str, str]]]:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    rules = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", text):
        props = {}
        for declaration in body.split(";"):
            if ":" in declaration:
                name, value = declaration.split(":", 1)
                props[name.strip()] = value.strip()
        rules.append((" ".join(selector.split()), props))
    return rules


def variables() -> dict[str, str]:
    found = {}
    for selector, props in declarations((CSS / "site.css").read_text()):
        if selector == ":root":
            found.update({name: value for name, value in props.items() if name.startswith("--")})
    return found


VARS = variables()


def colour(value: str | None) -> str | None:
    """A #rrggbb colour from a declaration value, or None if it is not one plain colour."""
    if not value:
        return None
    match = re.fullmatch(r"var\((--[\w-]+)\)", value)
    if match:
        value = VARS.get(match.group(1), "")
    if re.fullmatch(r"#[0-9a-fA-F]{3}", value):
        value = "#" + "".join(c * 2 for c in value[1:])
    if re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        return value.lower()
    return {"white": "#ffffff"}.get(value)


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def pairs() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(CSS.glob("*.css")):
        for selector, props in declarations(path.read_text()):
            background = colour(props.get("background") or props.get("background-color"))
            if background is None:
                continue
            # Buttons inherit white text from the `button` rule; everything else the body's ink.
            inherited = "#ffffff" if selector.startswith(("button", "a.button")) else VARS["--ink"]
            foreground = colour(props.get("color")) or colour(inherited)
            found.append((f"{path.name}: {selector}", foreground, background))
    for name in ("--ink", "--muted", "--accent", "--fake", "--real"):
        for where, background in (("page", PAGE), ("card", CARD)):
            found.append((f"{name} text on the {where}", colour(f"var({name})"), background))
    found.append(("muted hint in the drop zone", colour("var(--muted)"), "#fbfcfe"))
    return found


def test_the_style_sheets_define_the_badges_for_every_state():
    selectors = " ".join(name for name, _, _ in pairs())
    for state in ("queued", "running", "real", "uncertain", "fake", "no_face", "failed"):
        assert f".badge-{state}" in selectors


def test_each_badge_state_has_its_own_colours():
    badges = {
        (foreground, background)
        for name, foreground, background in pairs()
        if re.search(r"\.badge-\w+", name)
    }
    assert len(badges) == 7


@pytest.mark.parametrize(("where", "foreground", "background"), pairs())
def test_text_contrast_is_at_least_4_5_to_1(where, foreground, background):
    ratio = contrast(foreground, background)
    assert ratio >= AA, f"{where}: {foreground} on {background} is {ratio:.2f}:1"
