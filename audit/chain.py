"""The AuditLog hash chain: the canonical form of an entry and its SHA-256.

Every entry stores the hash of the entry before it (`previous_hash`) and its own
hash (`entry_hash`) over a canonical serialization of its content plus that
previous hash. Changing, removing or inserting a row anywhere breaks the link
to the rows after it, which `verify_audit_log` reports.

The canonical form is ours, never the database's rendering of the row:

- a JSON object with sorted keys and no whitespace, ASCII only (`\\uXXXX` escapes);
- timestamps in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`;
- UUIDs as lowercase hyphenated strings, IP addresses in their compressed form;
- JSON field values are normalized before they are stored (decimals, dates and
  UUIDs become strings, floats with an integral value become integers), so what
  the database gives back hashes exactly like what was written.

Changing anything here changes every hash: treat it as a file format.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ipaddress
import json
import uuid
from collections.abc import Mapping, Sequence

from django.core.serializers.json import DjangoJSONEncoder

from records import jsontext

# The `previous_hash` of the first entry: there is nothing before it.
GENESIS_HASH = "0" * 64

# Every stored field of an entry except `entry_hash` itself; a test checks that
# a field added to AuditLog is added here too.
HASHED_FIELDS = (
    "id",
    "sequence",
    "previous_hash",
    "created_at",
    "user_id",
    "action",
    "severity",
    "resource_type",
    "resource_id",
    "description",
    "old_value",
    "new_value",
    "metadata",
    "ip_address",
    "user_agent",
    "session_id",
    "engagement_id",
    "trace_id",
)
JSON_FIELDS = ("old_value", "new_value", "metadata")
# The keys of the canonical form in the order it writes them (sorted), and the form
# itself with a slot for each key's canonical JSON text.
CANONICAL_KEYS = tuple(sorted(HASHED_FIELDS))
_CANONICAL_TEMPLATE = "{" + ",".join(f'"{key}":%s' for key in CANONICAL_KEYS) + "}"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)
# The string quoting that encoder uses (the C one when available), and, for JSON field
# values, the C encoder it builds on every call, built once (no circular-reference
# check: values read back from the database cannot refer to themselves).
_quote = json.encoder.encode_basestring_ascii
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_encode_value = (
    _c_make_encoder(None, _CANONICAL_JSON.default, _quote, None, ":", ",", True, False, False)
    if _c_make_encoder is not None
    else None
)


def _parse_json_float(text: str) -> int | float:
    """Read a JSON number with a fraction or exponent; integral values become ints.

    PostgreSQL's jsonb keeps numbers as `numeric`, so 1.0 may come back as 1 and
    1e20 as an integer: storing them as ints up front keeps the round trip exact.
    """
    value = float(text)
    return int(value) if value.is_integer() else value


def normalize_json(value):
    """Return `value` as the plain JSON the database will give back when read.

    Decimals, dates and UUIDs become strings (DjangoJSONEncoder), tuples lists,
    integral floats ints; NaN and infinity are refused (jsonb cannot hold them).
    """
    if value is None:
        return None
    text = json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)
    return json.loads(text, parse_float=_parse_json_float)


def _canonical_uuid(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(uuid.UUID(str(value)))


def _canonical_timestamp(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        # Naive timestamps are UTC in this project (TIME_ZONE = "UTC").
        value = value.replace(tzinfo=datetime.UTC)
    elif value.utcoffset():
        value = value.astimezone(datetime.UTC)
    # isoformat() is several times faster than strftime(); for any year from
    # 1000 on it gives exactly TIMESTAMP_FORMAT once the offset is replaced by Z.
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@functools.lru_cache(maxsize=4096)
def _canonical_ip(value) -> str | None:
    if value in (None, ""):
        return None
    return ipaddress.ip_address(str(value)).compressed


@functools.lru_cache(maxsize=4096)
def canonical_ip_text(value: str | None) -> str:
    """Return the canonical JSON of an IP address as the database gives it (text or None)."""
    return "null" if value is None else _json(_canonical_ip(value))


def _json(value) -> str:
    """Return `value` as the canonical encoder writes it (str and None the fast way)."""
    if value is None:
        return "null"
    if type(value) is str:
        return _quote(value)
    if _encode_value is not None and type(value) is dict:
        return "".join(_encode_value(value, 0))
    return _CANONICAL_JSON.encode(value)


# JSON texts whose canonical form is themselves (the commonest field values).
_SELF_CANONICAL_JSON = frozenset(("null", "{}", "[]"))


def canonical_json_text(text: str | None) -> str:
    """Return the canonical JSON of a JSON field value given as the database's JSON text.

    The same as `_json(json.loads(text))`, read by orjson where the two agree
    (records.jsontext).
    """
    if text is None:
        return "null"
    if text in _SELF_CANONICAL_JSON:
        return text
    return _json(jsontext.loads(text))


def _json_uuid(value) -> str:
    return "null" if value is None else f'"{_canonical_uuid(value)}"'


def _json_user_id(value) -> str:
    if value is None or isinstance(value, bool):
        return _json(value)
    if isinstance(value, int):
        return int.__repr__(value)
    return _quote(str(value))


def canonical_row(texts: Sequence[str]) -> bytes:
    """Return the canonical bytes of one entry given each field's canonical JSON text.

    `texts` are in CANONICAL_KEYS order, each exactly what `canonical_entry` writes for
    that key (e.g. `"2026-01-01T00:00:00.000000Z"` with its quotes, `null`); the
    verification's fast read path has the database write some of them.
    """
    return (_CANONICAL_TEMPLATE % tuple(texts)).encode("ascii")


# The fields of a text row (`canonical_text_row`) after its sequence, previous_hash and
# entry_hash: the others, in CANONICAL_KEYS order.
TEXT_ROW_KEYS = tuple(key for key in CANONICAL_KEYS if key not in ("sequence", "previous_hash"))


def canonical_text_row(row: Sequence) -> bytes:
    """Return the canonical bytes of one entry read as text (the verification's fast path).

    `row` is the sequence (int), previous_hash and entry_hash, then the TEXT_ROW_KEYS:
    created_at and the UUIDs and user id already as their canonical JSON text, strings
    and the IP address as stored, JSON field values as JSON text (or None). For an entry
    read intact that way the bytes are exactly `canonical_entry`'s (tests compare them).
    """
    (
        sequence,
        previous_hash,
        _,
        action,
        created_at,
        description,
        engagement_id,
        id_,
        ip_address,
        metadata,
        new_value,
        old_value,
        resource_id,
        resource_type,
        session_id,
        severity,
        trace_id,
        user_agent,
        user_id,
    ) = row
    return (
        _CANONICAL_TEMPLATE
        % (
            _quote(action),
            created_at,
            _quote(description),
            engagement_id,
            id_,
            canonical_ip_text(ip_address),
            canonical_json_text(metadata),
            canonical_json_text(new_value),
            canonical_json_text(old_value),
            _quote(previous_hash),
            resource_id,
            _quote(resource_type),
            int.__repr__(sequence),
            session_id,
            _quote(severity),
            "null" if trace_id is None else _quote(trace_id),
            _quote(user_agent),
            user_id,
        )
    ).encode("ascii")


def canonical_entry(values: Mapping) -> bytes:
    """Return the canonical bytes of one entry given its field values (attnames).

    The bytes are exactly `json.dumps(payload, sort_keys=True, separators=(",", ":"),
    ensure_ascii=True, allow_nan=False)` of the payload of HASHED_FIELDS (tests compare
    it with that, field by field and on random entries), written out key by key in
    sorted order: building and sorting a dict for every row was half of
    `verify_audit_log`'s time. JSON field values go through that same encoder.
    """
    ip_address = values["ip_address"]
    ip_address = None if ip_address is None else _canonical_ip(str(ip_address))
    return canonical_row(
        (
            _quote(str(values["action"])),
            f'"{_canonical_timestamp(values["created_at"])}"',
            _quote(str(values["description"])),
            _json_uuid(values["engagement_id"]),
            _json_uuid(values["id"]),
            _json(ip_address),
            _json(values["metadata"]),
            _json(values["new_value"]),
            _json(values["old_value"]),
            _json(values["previous_hash"]),
            _json_uuid(values["resource_id"]),
            _quote(str(values["resource_type"])),
            int.__repr__(int(values["sequence"])),
            _json_uuid(values["session_id"]),
            _quote(str(values["severity"])),
            _json(values["trace_id"]),
            _quote(str(values["user_agent"])),
            _json_user_id(values["user_id"]),
        )
    )


def compute_entry_hash(values: Mapping) -> str:
    """Return the SHA-256 (hex) of an entry's canonical form, previous hash included."""
    return hashlib.sha256(canonical_entry(values)).hexdigest()
