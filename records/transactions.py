"""Audited transactions: the audit chain's head is the last lock a transaction takes.

In `records` (the foundation) so that every layer's services can run in one; the
audit app queues its entries here (`audit.services.audit_record`).

Appending an AuditLog entry locks the one chain-head row until the transaction
commits. When services appended mid-transaction, a transaction could hold the
head while it still had rows to lock (an engagement, team members), while another
held those rows and waited for the head: PostgreSQL answered "deadlock detected"
to most writes with a dozen people on a few engagements (issue 22).

So the lock order is fixed, for every transaction that records audit events:

1. business rows, in the order each service documents (an engagement before what
   belongs to it), locked with ``FOR NO KEY UPDATE`` (`records.services.lock`), which
   does not conflict with the ``KEY SHARE`` locks that inserts referencing those rows
   take for their foreign keys;
2. the chain head, last: ``audit_record`` inside an audited transaction only queues
   its entry; when the outermost audited transaction's block ends, the queued
   entries are linked and inserted under the head lock, and the transaction
   commits right after. The head is held for those inserts and the commit only.

Chain order therefore is commit order. An entry queued inside a savepoint that is
rolled back is dropped with it (the savepoint's ``on_commit`` marker goes too).

Every service's write operation runs in `audited_transaction` (a decorator and a
context manager). As a decorator, when it opens the database transaction itself,
it retries the operation once if the database reports a deadlock or a
serialization failure among business rows: the first attempt left nothing behind,
and the operation re-reads what it locks.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import OperationalError, transaction

logger = logging.getLogger(__name__)

# SQLSTATEs PostgreSQL gives a transaction it chose to abort: deadlock_detected,
# serialization_failure. Retrying the whole transaction is the documented answer.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
RETRIED = "Retrying %s once: the database aborted it (%s)."


class _Marker:
    """An on_commit callback that does nothing: it shows whether its savepoint survived."""

    __slots__ = ()

    def __call__(self) -> None:
        return None


@contextmanager
def _audited_block(using: str | None) -> Iterator[None]:
    connection = transaction.get_connection(using)
    with transaction.atomic(using=using):
        outermost = not getattr(connection, "audit_depth", 0)
        if outermost:
            connection.audit_pending = []
        connection.audit_depth = getattr(connection, "audit_depth", 0) + 1
        try:
            yield
            if outermost:
                _append_pending(connection)
        finally:
            connection.audit_depth -= 1
            if outermost:
                connection.audit_pending = []


def audited_transaction[F: Callable[..., Any]](func: F | None = None, *, using: str | None = None):
    """Run `func` (or the with-block) in a transaction whose audit events are appended last.

    Nested audited transactions join the outermost one, whose end appends every
    queued entry to the chain. Used as a decorator on a call that opens the
    database transaction, a deadlock or serialization failure is retried once.
    """
    if func is None:
        return _audited_block(using)

    @functools.wraps(func)
    def run(*args, **kwargs):
        retry = not transaction.get_connection(using).in_atomic_block
        try:
            with _audited_block(using):
                return func(*args, **kwargs)
        except OperationalError as error:
            if not (retry and is_retryable(error)):
                raise
            logger.warning(RETRIED, func.__qualname__, str(error).splitlines()[0])
        with _audited_block(using):
            return func(*args, **kwargs)

    return run


def is_retryable(error: OperationalError) -> bool:
    """Return whether the database aborted the transaction to break a deadlock (or a race)."""
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES


def queue_entry(entry, *, using: str | None = None) -> None:
    """Queue `entry` (an unsaved AuditLog row) for the end of the current audited transaction.

    Outside one, the entry gets its own audited transaction and is appended now.
    The append is the entry's own `save()`, which links it into the chain: this
    module knows nothing else of the audit log (it sits below the audit app).
    """
    with _audited_block(using):
        connection = transaction.get_connection(using)
        marker = _Marker()
        connection.on_commit(marker)
        connection.audit_pending.append((marker, entry))


def _append_pending(connection) -> None:
    """Link and insert the queued entries that survived their savepoints, under the head lock.

    Each is saved on its own (`AuditLog.save` numbers and hashes it against the head,
    which the first one locks), so receivers of `post_save` see every entry.
    """
    if not connection.audit_pending:
        return
    alive = {id(callback) for _savepoints, callback, _robust in connection.run_on_commit}
    entries = [entry for marker, entry in connection.audit_pending if id(marker) in alive]
    connection.audit_pending = []
    # The markers have told what they knew; the commit hooks are left as callers made them.
    connection.run_on_commit = [
        hook for hook in connection.run_on_commit if not isinstance(hook[1], _Marker)
    ]
    for entry in entries:
        entry.save(using=connection.alias)
