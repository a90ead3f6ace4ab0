import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def percent(value) -> str:
    """0.8734 -> "87.3%"; an empty value -> "—"."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.1f}%"


@register.filter
def seconds(value) -> str:
    if value is None or value == "":
        return "—"
    return f"{float(value):.2f} s"


@register.filter
def sub(value, arg):
    """value - arg, for coordinates in the result page's SVG."""
    return round(float(value) - float(arg), 2)


@register.filter
def breakable(name) -> str:
    """A file name (escaped) that may wrap after its underscores, dashes and dots, so that
    "liveportrait_driving_d12.mp4" breaks between its parts rather than inside "mp4"."""
    return mark_safe(re.sub(r"([_.\-])", r"\1<wbr>", str(escape(name))))
