"""Template filters showing things the one way (records.formatting): `{% load readable %}`."""

from django import template

from records import formatting

register = template.Library()


@register.filter
def when(value, empty="—"):
    """A moment as "5 December 2026 06:33 UTC"."""
    return formatting.format_datetime(value, empty)


@register.filter
def day(value, empty="—"):
    """A day as "5 December 2026"."""
    return formatting.format_date(value, empty)


@register.filter
def filesize(value):
    """A size in bytes as "12.5 KB"."""
    return formatting.format_file_size(value)


@register.filter
def number(value, places=None):
    """A number with thousands separators (`places` decimals)."""
    return formatting.format_number(value, None if places is None else int(places))


@register.filter
def person(user):
    """A person by name."""
    return formatting.person(user)


@register.filter
def words(code):
    """A snake_case code as words."""
    return formatting.humanize_code(code)


@register.filter
def readable(value):
    """Any stored value (JSON included) as plain text."""
    return formatting.readable_value(value)
