"""Verify the AuditLog chain in stretches, in parallel worker processes, and join the seams.

`verify_audit_log` checks every link: sequence numbers without gaps, each entry's
`previous_hash` equal to the entry before's `entry_hash`, each `entry_hash` equal to
the SHA-256 of the entry's canonical form, and any anchors. The chain is cut into
stretches of consecutive sequence numbers; each stretch is checked on its own (in a
worker process when there are several), except for its first entry's link to the
entry before, which belongs to the seam. The seams are checked here, in chain order,
from what each stretch reports about its first and last entries, so the answer, the
first broken link and its message, is exactly the one a single walk from the start
gives (tests/audit/test_verify_parallel.py compares them).

Workers are processes, not threads: hashing and decoding rows is Python work, one
core each. Each opens its own database connection; the rows it reads were committed
before the check started (up to the chain head read then), so every process sees the
same ones.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256

from django.conf import settings
from django.db import connections

from .chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    JSON_FIELDS,
    TEXT_ROW_KEYS,
    canonical_entry,
    canonical_text_row,
    compute_entry_hash,
)
from .models import AuditLog

SEQUENCE_GAP = (
    "sequence gap: expected sequence {expected}, found {found} (entries removed or renumbered)"
)
PREVIOUS_HASH_MISMATCH = (
    "previous_hash mismatch at sequence {sequence}: the entry points to {stored}, "
    "but the entry before it hashes to {expected}"
)
ENTRY_HASH_MISMATCH = (
    "entry hash mismatch at sequence {sequence}: stored {stored}, recomputed {recomputed} "
    "(the entry was changed after it was written)"
)
ANCHOR_MISMATCH = (
    "anchor mismatch at sequence {sequence}: anchored hash {anchored}, stored {stored}"
)

FIELDS = (*HASHED_FIELDS, "entry_hash")
# Stretches are at least this long (fewer, longer queries) and at most this long (the
# progress bar moves, and a break is found without checking much past it).
MIN_STRETCH = 20_000
MAX_STRETCH = 200_000


@dataclass(frozen=True)
class Break:
    """The first broken link: where, and what does not match."""

    sequence: int
    problem: str


@dataclass(frozen=True)
class Stretch:
    """What checking the sequence numbers `first`..`last` (None: to the end) found."""

    first: int
    last: int | None
    count: int = 0
    # The first entry read (its sequence and previous_hash: the seam with the stretch before).
    first_sequence: int | None = None
    first_previous_hash: str | None = None
    # The last entry checked: {"sequence": …, "entry_hash": …}.
    last_entry: dict | None = None
    broken: Break | None = None
    anchors_found: frozenset[int] = field(default_factory=frozenset)


def check_stretch(
    database: str, first: int, last: int | None, anchors: dict[int, str], page_size: int
) -> Stretch:
    """Check the links inside one stretch; stop at its first break (the seam is not checked).

    The first entry's sequence must be `first` and its previous_hash is reported for
    the seam; every later entry must follow the one before. Rows are read in
    pages of `page_size`, so memory stays bounded.
    """
    rows, canonical, exact = _reader(database, first, last, page_size)
    expected_sequence, expected_previous = first, None
    count, first_entry, found = 0, None, set()
    broken = None
    for row in rows:
        sequence, previous_hash, entry_hash = row[0], row[1], row[2]
        if first_entry is None:
            first_entry = (sequence, previous_hash)
        if sequence != expected_sequence:
            broken = Break(
                sequence, SEQUENCE_GAP.format(expected=expected_sequence, found=sequence)
            )
            break
        if expected_previous is not None and previous_hash != expected_previous:
            broken = Break(
                sequence,
                PREVIOUS_HASH_MISMATCH.format(
                    sequence=sequence, stored=previous_hash, expected=expected_previous
                ),
            )
            break
        if exact:
            recomputed = sha256(canonical(row)).hexdigest()
        else:
            try:
                recomputed = sha256(canonical(row)).hexdigest()
            except Exception:  # decided below, from the entry as the ORM reads it
                recomputed = None
            if recomputed != entry_hash:
                # The fast reading of an intact row is its canonical form; for any other
                # row the answer (the recomputed hash in the message, or an error) is
                # the one the entry as the ORM reads it gives.
                recomputed = compute_entry_hash(_entry(database, sequence))
        if recomputed != entry_hash:
            broken = Break(
                sequence,
                ENTRY_HASH_MISMATCH.format(
                    sequence=sequence, stored=entry_hash, recomputed=recomputed
                ),
            )
            break
        if sequence in anchors:
            found.add(sequence)
            if anchors[sequence] != entry_hash:
                broken = Break(
                    sequence,
                    ANCHOR_MISMATCH.format(
                        sequence=sequence, anchored=anchors[sequence], stored=entry_hash
                    ),
                )
                break
        count += 1
        expected_sequence, expected_previous = sequence + 1, entry_hash
    return Stretch(
        first=first,
        last=last,
        count=count,
        first_sequence=first_entry[0] if first_entry else None,
        first_previous_hash=first_entry[1] if first_entry else None,
        last_entry=(
            {"sequence": expected_sequence - 1, "entry_hash": expected_previous} if count else None
        ),
        broken=broken,
        anchors_found=frozenset(found),
    )


def _reader(
    database: str, first: int, last: int | None, page_size: int
) -> tuple[Iterator[tuple], Callable[[tuple], bytes], bool]:
    """Return the rows `first`..`last`, how to get a row's canonical bytes, and if exactly.

    Each row starts with its sequence, previous_hash and entry_hash. On PostgreSQL the
    database writes the canonical text of most fields itself (`canonical_text_row`):
    not exactly the canonical form for a row that was tampered with, so a row that does
    not hash to its entry_hash is read again the ORM's way (`exact` is False).
    """
    connection = connections[database]
    select = _text_select(connection)
    if select is None:
        rows = (
            (e["sequence"], e["previous_hash"], e["entry_hash"], e)
            for e in _entries(database, first, last, page_size)
        )
        return rows, _canonical_of_entry, True
    return _pages(connection, select, first, last, page_size), canonical_text_row, False


def _canonical_of_entry(row: tuple) -> bytes:
    return canonical_entry(row[3])


# The integer fields whose text in PostgreSQL is Python's repr of the value.
_INTEGER_TYPES = frozenset(
    (
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
    )
)


def _text_select(connection) -> str | None:
    """Return the SELECT list of the fast reading on PostgreSQL (None elsewhere).

    PostgreSQL writes a UUID's canonical text itself (lowercase, hyphenated), an integer
    user id, and a timestamp in UTC with its microseconds (`to_char`, like isoformat()
    for every year Python can hold); strings, IP addresses and JSON values are made
    canonical here, from their text.
    """
    if connection.vendor != "postgresql" or not settings.USE_TZ:
        # (Without USE_TZ, created_at has no time zone for `AT TIME ZONE` to read.)
        return None
    quote = connection.ops.quote_name

    def column(name: str) -> str:
        return quote(AuditLog._meta.get_field(name).column)

    def uuid_text(name: str) -> str:
        return f"""COALESCE('"' || {column(name)}::text || '"', 'null')"""

    user_target = AuditLog._meta.get_field("user").target_field.get_internal_type()
    if user_target in _INTEGER_TYPES:
        user_text = f"COALESCE({column('user')}::text, 'null')"
    elif user_target == "UUIDField":
        user_text = uuid_text("user")
    else:
        return None
    created_at = (
        f"""'"' || to_char({column("created_at")} AT TIME ZONE 'UTC', """
        """'YYYY-MM-DD"T"HH24:MI:SS.US') || 'Z"'"""
    )
    texts = {
        "created_at": created_at,
        "user_id": user_text,
        **{name: uuid_text(name) for name in ("id", "resource_id", "session_id", "engagement_id")},
        **{name: f"{column(name)}::text" for name in JSON_FIELDS},
    }
    return ", ".join(
        [column("sequence"), column("previous_hash"), column("entry_hash")]
        + [texts.get(key) or column(key) for key in TEXT_ROW_KEYS]
    )


def _pages(connection, select: str, first: int, last: int | None, page_size: int):
    """Yield the rows of `select` for `first`..`last` in sequence order, page by page.

    Sequence numbers have no gaps, so a page is read as the range of the next
    `page_size` numbers: an index range scan even when the table's statistics are
    stale (after a restore or a bulk load the planner chose to sort the whole stretch,
    or the whole table, for every keyset page), and the next page can be asked for
    while this one is checked (on the same connection, by a thread: the database's
    work and the wait for it overlap the hashing). A range short of rows (a gap, or
    the end) is read again as a keyset page, so the rows are exactly those a keyset
    walk reads.
    """
    quote = connection.ops.quote_name
    table, sequence = quote(AuditLog._meta.db_table), quote("sequence")
    by_range = (
        f"SELECT {select} FROM {table} WHERE {sequence} BETWEEN %s AND %s ORDER BY {sequence}"
    )
    upper = "" if last is None else f" AND {sequence} <= %s"
    by_keyset = (
        f"SELECT {select} FROM {table} WHERE {sequence} >= %s{upper} ORDER BY {sequence} LIMIT %s"
    )
    connection.ensure_connection()
    raw = connection.connection

    def fetch(sql: str, params: list) -> list[tuple]:
        with raw.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def page_end(start: int) -> int:
        return start + page_size - 1 if last is None else min(start + page_size - 1, last)

    start = first
    with ThreadPoolExecutor(max_workers=1) as reader:
        ahead = reader.submit(fetch, by_range, [start, page_end(start)])
        while True:
            end = page_end(start)
            page = ahead.result() if ahead is not None else []
            ahead = None
            if end >= start and len(page) == end - start + 1:
                if end == last:
                    yield from page
                    return
                start = end + 1
                ahead = reader.submit(fetch, by_range, [start, page_end(start)])
                yield from page
                continue
            page = fetch(
                by_keyset, [start, last, page_size] if last is not None else [start, page_size]
            )
            yield from page
            if len(page) < page_size:
                return
            start = page[-1][0] + 1
            ahead = reader.submit(fetch, by_range, [start, page_end(start)])


def _entry(database: str, sequence: int) -> dict:
    """Return the entry `sequence` as the ORM reads it."""
    return next(_entries(database, sequence, sequence, 1))


def _entries(database: str, first: int, last: int | None, page_size: int) -> Iterator[dict]:
    """Yield the entries `first`..`last` in sequence order, as the ORM reads them."""
    connection = connections[database]
    if connection.vendor != "postgresql":
        entries = AuditLog.objects.using(database).order_by("sequence")
        if last is not None:
            entries = entries.filter(sequence__lte=last)
        start = first
        while True:
            page = list(entries.filter(sequence__gte=start).values(*FIELDS)[:page_size])
            yield from page
            if len(page) < page_size:
                return
            start = page[-1]["sequence"] + 1
    # PostgreSQL: the same columns through the connection's own cursor (so the same type
    # adapters as the ORM), without building model-layer rows.
    table = AuditLog._meta.db_table
    quote = connection.ops.quote_name
    columns = ", ".join(quote(AuditLog._meta.get_field(name).column) for name in FIELDS)
    json_positions = [FIELDS.index(name) for name in JSON_FIELDS]
    upper = "" if last is None else f" AND {quote('sequence')} <= %s"
    sql = (
        f"SELECT {columns} FROM {quote(table)} WHERE {quote('sequence')} >= %s{upper} "
        f"ORDER BY {quote('sequence')} LIMIT %s"
    )
    start = first
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                sql, [start, last, page_size] if last is not None else [start, page_size]
            )
            page = cursor.fetchall()
            for row in page:
                values = list(row)
                for position in json_positions:
                    if isinstance(values[position], str):
                        values[position] = json.loads(values[position])
                yield dict(zip(FIELDS, values, strict=True))
            if len(page) < page_size:
                return
            start = page[-1][FIELDS.index("sequence")] + 1


def _check_stretch_in_worker(arguments: tuple) -> Stretch:
    return check_stretch(*arguments)


def _own_connections() -> None:
    # A forked worker never uses the parent's connections (closed before the fork): it
    # opens its own on its first query.
    connections.close_all()


def stretches(bound: int | None, workers: int) -> list[tuple[int, int | None]]:
    """Return the (first, last) sequence numbers of each stretch up to `bound`."""
    if bound is None or bound < 1:
        return [(1, None)]
    size = max(MIN_STRETCH, min(MAX_STRETCH, bound // max(1, workers * 4) + 1))
    return [(first, min(first + size - 1, bound)) for first in range(1, bound + 1, size)]


def walk_chain(
    *,
    database: str,
    bound: int | None,
    anchors: dict[int, str],
    page_size: int,
    workers: int = 1,
    advance: Callable[[int], None] = lambda count: None,
) -> tuple[int, dict | None, Break | None]:
    """Check every link up to `bound`; return (entries checked, last entry, first break).

    With `workers` above one, stretches are checked in that many processes; the seams
    and the order of the answer are the same as a single walk's. Anchors found are
    removed from `anchors` (those left were not in the log).
    """
    plan = stretches(bound, workers)
    arguments = [(database, first, last, anchors, page_size) for first, last in plan]
    if workers > 1 and len(plan) > 1:
        # Connections are not shared with the workers: each forks without them.
        connections.close_all()
        context = multiprocessing.get_context("fork")
        with context.Pool(min(workers, len(plan)), initializer=_own_connections) as pool:
            return _join(pool.imap(_check_stretch_in_worker, arguments), anchors, advance)
    return _join(map(_check_stretch_in_worker, arguments), anchors, advance)


def _join(
    results: Iterator[Stretch], anchors: dict[int, str], advance: Callable[[int], None]
) -> tuple[int, dict | None, Break | None]:
    """Join the stretches in chain order, checking each seam; stop at the first break."""
    expected_sequence, expected_previous = 1, GENESIS_HASH
    count, last = 0, None
    for stretch in results:
        if stretch.first_sequence is not None:
            # The seam: the stretch's first entry must follow the last entry checked.
            if stretch.first_sequence != expected_sequence:
                problem = SEQUENCE_GAP.format(
                    expected=expected_sequence, found=stretch.first_sequence
                )
                return count, last, Break(stretch.first_sequence, problem)
            if stretch.first_previous_hash != expected_previous:
                problem = PREVIOUS_HASH_MISMATCH.format(
                    sequence=stretch.first_sequence,
                    stored=stretch.first_previous_hash,
                    expected=expected_previous,
                )
                return count, last, Break(stretch.first_sequence, problem)
        for sequence in stretch.anchors_found:
            anchors.pop(sequence, None)
        count += stretch.count
        if stretch.broken is not None:
            return count, stretch.last_entry or last, stretch.broken
        if stretch.last_entry is not None:
            last = stretch.last_entry
            expected_sequence = last["sequence"] + 1
            expected_previous = last["entry_hash"]
        advance(stretch.count)
    return count, last, None
