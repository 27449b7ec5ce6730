"""The API's request parsers."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from .serializers import JSON_TOO_DEEP, MAX_JSON_DEPTH


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 (not 500) to JSON nested too deep for Python to read."""

    def parse(self, stream, media_type=None, parser_context=None):
        """Return the parsed body; a RecursionError becomes a ParseError."""
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(JSON_TOO_DEEP.format(depth=MAX_JSON_DEPTH)) from None
