"""The API's JSON renderer: DRF's output, written by orjson.

DRF's `JSONRenderer` runs the standard library's encoder with a Python `default` hook;
on a page of 100 engagements that is about a millisecond of every request's CPU
(issue 18). orjson writes the same JSON in a tenth of the time. Everything orjson does
not write the way DRF would goes to DRF's own encoder (`default`): datetimes (DRF keeps
milliseconds and writes `Z`), decimals, lazy strings, sets, anything with `tolist`.
orjson writes compact JSON with UTF-8 text, as DRF does with `COMPACT_JSON` and
`UNICODE_JSON` on; U+2028 and U+2029 are escaped afterwards, as DRF escapes them.

A response orjson cannot write (an integer beyond 64 bits, a key that is not a string)
or an indented one (`Accept: application/json; indent=2`) goes through DRF's renderer
unchanged. One difference is on purpose: a float that is not a number (NaN, infinity)
comes out as `null`, where DRF's strict JSON would fail the request with a 500.
"""

from __future__ import annotations

import orjson
from rest_framework import renderers
from rest_framework.settings import api_settings
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_LINE_SEPARATOR, _PARAGRAPH_SEPARATOR = "\u2028".encode(), "\u2029".encode()
_default = JSONEncoder().default


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer, writing with orjson where the bytes come out the same."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        """Return `data` as JSON bytes, as DRF's renderer would."""
        if data is None:
            return b""
        if not self._plain(accepted_media_type, renderer_context):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_default, option=_OPTIONS)
        except (orjson.JSONEncodeError, TypeError, ValueError):
            return super().render(data, accepted_media_type, renderer_context)
        if _LINE_SEPARATOR in body or _PARAGRAPH_SEPARATOR in body:
            body = body.replace(_LINE_SEPARATOR, b"\\u2028").replace(
                _PARAGRAPH_SEPARATOR, b"\\u2029"
            )
        return body

    def _plain(self, accepted_media_type, renderer_context) -> bool:
        """Return whether DRF would write compact UTF-8 JSON with no indent."""
        if self.encoder_class is not JSONEncoder or not api_settings.STRICT_JSON:
            return False
        if not (self.compact and not self.ensure_ascii):
            return False
        return self.get_indent(accepted_media_type or "", renderer_context or {}) is None
