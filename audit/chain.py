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
import hashlib
import ipaddress
import json
import uuid
from collections.abc import Mapping

from django.core.serializers.json import DjangoJSONEncoder

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
UUID_FIELDS = ("id", "resource_id", "session_id", "engagement_id")
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


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
    return None if value is None else str(uuid.UUID(str(value)))


def _canonical_timestamp(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        # Naive timestamps are UTC in this project (TIME_ZONE = "UTC").
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).strftime(TIMESTAMP_FORMAT)


def _canonical_ip(value) -> str | None:
    if value in (None, ""):
        return None
    return ipaddress.ip_address(str(value)).compressed


def canonical_entry(values: Mapping) -> bytes:
    """Return the canonical bytes of one entry given its field values (attnames)."""
    payload = {name: values[name] for name in HASHED_FIELDS}
    for name in UUID_FIELDS:
        payload[name] = _canonical_uuid(payload[name])
    payload["created_at"] = _canonical_timestamp(payload["created_at"])
    payload["ip_address"] = _canonical_ip(payload["ip_address"])
    payload["sequence"] = int(payload["sequence"])
    if payload["user_id"] is not None and not isinstance(payload["user_id"], int):
        payload["user_id"] = str(payload["user_id"])
    for name in ("action", "severity", "resource_type", "description", "user_agent"):
        payload[name] = str(payload[name])
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def compute_entry_hash(values: Mapping) -> str:
    """Return the SHA-256 (hex) of an entry's canonical form, previous hash included."""
    return hashlib.sha256(canonical_entry(values)).hexdigest()
