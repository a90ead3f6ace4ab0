import re

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from detection.presenters import percent_text

register = template.Library()


@register.filter
def percent(value) -> str:
    """0.8734 -> "87.3%", 0.99996 -> ">99.9%" (presenters.percent_text); an empty value -> "—"."""
    if value is None or value == "":
        return "—"
    return percent_text(float(value))


@register.filter
def progress_percent(value) -> str:
    """A job's progress, 0.42 -> "42%" (not a probability: 0 and 100 % are exact here)."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.0f}%"


@register.filter
def seconds(value) -> str:
    if value is None or value == "":
        return "—"
    return f"{float(value):.2f} s"


# The engine's stages (AnalysisResult.timings, ml/detector.py) in the pages' words.
STAGE_LABELS = {
    "decode": "reading the file",
    "faces": "finding faces",
    "verify": "confirming faces",
    "images": "pictures",
    "classify": "face-swap model",
    "synthetic": "AI-generated face model",
    "explain": "heatmaps",
}


@register.filter
def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage, stage)


@register.filter
def sub(value, arg):
    """value - arg, for coordinates in the result page's SVG."""
    return round(float(value) - float(arg), 2)


@register.filter
def breakable(name) -> str:
    """A file name (escaped) that may wrap after its underscores, dashes and dots, so that
    "liveportrait_driving_d12.mp4" breaks between its parts rather than inside "mp4"."""
    return mark_safe(re.sub(r"([_.\-])", r"\1<wbr>", str(escape(name))))
