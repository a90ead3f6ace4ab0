from django import template

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
