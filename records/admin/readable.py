"""How the admin shows stored values: as people read them (issue 17).

Django's admin shows a read-only JSONField as a JSON dump, a UUID as bare text, a
state as a word and a file size as a count of bytes, on every page of every app.
`install()` (called once from RecordsConfig.ready()) replaces the admin's
`display_for_field` in the two modules that call it, so that everywhere at once a
JSON value reads as a list ("Designation: FCAS; valid from …"), an id is shown as
code, a `status` as a coloured chip and a size as "12.5 KB"; every other value goes
to Django's own function. One hook keeps every app's pages alike without each admin
re-declaring its fields.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.contrib.admin import helpers
from django.contrib.admin import utils as admin_utils
from django.contrib.admin.templatetags import admin_list
from django.db import models
from django.utils.html import format_html, format_html_join

from records.formatting import field_label, format_file_size, humanize_code, readable_value

UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_django_display_for_field = admin_utils.display_for_field
# Fields holding a size in bytes.
SIZE_FIELDS = frozenset({"file_size", "file_size_bytes", "size_bytes"})


def readable_json(value: Any):
    """Return a JSON value as HTML people read: mappings as lists, ids as code."""
    if isinstance(value, dict):
        if not value:
            return "—"
        return format_html(
            '<ul class="workspace-list">{}</ul>',
            format_html_join(
                "",
                "<li>{}: {}</li>",
                ((field_label(key), readable_json(item)) for key, item in value.items()),
            ),
        )
    if isinstance(value, list | tuple):
        if not value:
            return "—"
        if all(not isinstance(item, dict | list) for item in value):
            return format_html_join(", ", "{}", ((readable_json(item),) for item in value))
        return format_html(
            '<ul class="workspace-list">{}</ul>',
            format_html_join("", "<li>{}</li>", ((readable_json(item),) for item in value)),
        )
    if isinstance(value, str) and UUID_TEXT.match(value):
        return format_html("<code>{}</code>", value)
    if isinstance(value, str):
        return humanize_code(value)
    return readable_value(value)


def display_for_field(value, field, empty_value_display, avoid_link=False):
    """Django's `display_for_field`, with JSON as a readable list and ids as code, a
    state as a coloured chip, and a size in bytes as people read it."""
    if field.name == "status" and getattr(field, "flatchoices", None) and value:
        label = dict(field.flatchoices).get(value, value)
        return format_html('<span class="workspace-badge status-{}">{}</span>', value, label)
    if field.name in SIZE_FIELDS and isinstance(value, int):
        return format_file_size(value)
    if isinstance(field, models.JSONField) and value not in (None, ""):
        return readable_json(value)
    if isinstance(field, models.UUIDField) and value is not None:
        return format_html("<code>{}</code>", value)
    if isinstance(value, uuid.UUID):
        return format_html("<code>{}</code>", value)
    return _django_display_for_field(value, field, empty_value_display, avoid_link)


def install() -> None:
    """Make the admin's read-only fields and list cells use `display_for_field`."""
    helpers.display_for_field = display_for_field
    admin_list.display_for_field = display_for_field
