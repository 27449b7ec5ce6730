"""The one way to show things to people (issue 17): moments, sizes, numbers, people, codes.

Pages, exports and messages use these (templates through the `readable` filters), so
a date, a file size or a person reads the same wherever it appears: a moment as
"5 December 2026 06:33 UTC" (settings' DATETIME_FORMAT, config/formats/), a size as
"1.2 MB", a number with thousands separators, a person by their name.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

from django.utils import dateformat, formats, timezone

SIZE_UNITS = ("bytes", "KB", "MB", "GB", "TB")
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
# Words a code is made of that people write otherwise.
CODE_WORDS = {
    "ibnr": "IBNR",
    "ldf": "LDF",
    "cdf": "CDF",
    "csm": "CSM",
    "odp": "ODP",
    "se": "s.e.",
    "cv": "CV",
    "id": "",
    "bf": "BF",
}


def format_datetime(value: datetime.datetime | None, empty: str = "—") -> str:
    """Return `value` in the current time zone as "5 December 2026 06:33 UTC" (or `empty`)."""
    if value is None:
        return empty
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(value, datetime.datetime):
        return format_date(value, empty)
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return dateformat.format(value, formats.get_format("DATETIME_FORMAT"))


def format_date(value: datetime.date | None, empty: str = "—") -> str:
    """Return a day as "5 December 2026" (or `empty`)."""
    if value is None:
        return empty
    if isinstance(value, str):
        try:
            value = datetime.date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime.datetime):
        return format_datetime(value, empty)
    return dateformat.format(value, formats.get_format("DATE_FORMAT"))


def format_file_size(size: int | None, empty: str = "—") -> str:
    """Return a size in bytes as people read it: "777 bytes", "12.5 KB", "3.1 MB"."""
    if size is None:
        return empty
    value = float(size)
    for unit in SIZE_UNITS:
        if abs(value) < 1024 or unit == SIZE_UNITS[-1]:
            if unit == "bytes":
                return f"{int(value):,} byte{'' if int(value) == 1 else 's'}"
            return f"{value:,.1f} {unit}"
        value /= 1024
    return f"{size:,} bytes"  # pragma: no cover - the loop always returns


def format_number(value: Any, places: int | None = None, empty: str = "—") -> str:
    """Return a number with thousands separators; `places` decimals (default: 0 for ints)."""
    if value is None or value == "":
        return empty
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except ArithmeticError:
            return value
    if places is None:
        places = 0 if float(value).is_integer() else 2
    return f"{value:,.{places}f}"


def person(user, *, qualifications: list[str] | tuple[str, ...] = ()) -> str:
    """Return a person's name ("Bob Castellano", else the username), with designations."""
    if user is None:
        return "the system"
    name = (user.get_full_name() or "").strip() or user.get_username()
    if qualifications:
        return f"{name} ({', '.join(qualifications)})"
    return name


def status_label(obj) -> str:
    """Return an object's state as a refusal says it: "waiting for approval", not a code."""
    return obj.get_status_display().lower()


def humanize_code(code: Any) -> str:
    """Return a snake_case code as words: "reserve_calculation" -> "Reserve calculation"."""
    text = str(code or "")
    if not SNAKE_CASE.match(text):
        return text
    words = [CODE_WORDS.get(word, word) for word in text.split("_")]
    sentence = " ".join(word for word in words if word)
    return sentence[:1].upper() + sentence[1:]


def field_label(key: Any) -> str:
    """Return a stored key as a label: "checked_on" -> "Checked on", "move" -> "Move"."""
    text = humanize_code(key) or str(key)
    return text[:1].upper() + text[1:]


def readable_value(value: Any) -> str:
    """Return any stored value (JSON included) as plain text: lists joined, dicts as pairs."""
    if value is None or value == "" or value == {} or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | Decimal):
        return format_number(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return (
            format_datetime(value) if isinstance(value, datetime.datetime) else format_date(value)
        )
    if isinstance(value, dict):
        return "; ".join(
            f"{field_label(key)}: {readable_value(item)}" for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return ", ".join(readable_value(item) for item in value)
    return str(value)
