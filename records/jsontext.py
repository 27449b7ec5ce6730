"""JSON text read exactly as `json.loads` reads it, by orjson where the two agree.

JSON columns come back from the database as text (Django reads them with json.loads).
orjson reads the same text several times faster and gives the same values, except
that it reads an integer beyond 64 bits as a float and refuses NaN and infinity.
`loads` leaves any text with a run of 19 digits, and anything orjson refuses, to the
standard library. The API's lean lists (records.api.lean) and the audit chain's
verification (audit.chain) read JSON columns through it.
"""

from __future__ import annotations

import json
import re

import orjson

# A run of 19 digits: a number orjson might not read exactly, or a long string of
# digits; json.loads reads those texts.
_LONG_DIGITS = re.compile(r"[0-9]{19}")


def loads(text: str):
    """Return `text` read as json.loads reads it (raising json.JSONDecodeError as it does)."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
