"""Building blocks of every app's service layer: lock, save with history, move, describe changes.

Each app's `services.py` composes these into complete business operations
(`engagement_activate`, `approval_approve`, …). They live in the foundation, next
to the domain errors, because every app uses them.

The helpers that record an audit event (`create_and_record`, `save_edit_and_record`,
`move_and_record`, `soft_delete_and_record`) append it through the `audit_record`
hook: the audit app, one layer up, registers `audit.services.audit_record` in its
`AuditConfig.ready()`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from .exceptions import Conflict, InvalidInput
from .hooks import Hook

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

RECORD_GONE = "{label} “{record}” no longer exists (it was deleted)."
UNKNOWN_FIELDS = "Cannot change {fields} of {label} “{record}”: {reason}."

# simple-history stores change reasons in a 100-character column.
CHANGE_REASON_MAX_LENGTH = 100
# Fields that change on every save and say nothing about the business event.
NOISE_FIELDS = frozenset({"updated_at", "updated_by"})

# Append one business event to the AuditLog: audit.services.audit_record, registered by
# the audit app (records sits below audit and cannot import it).
audit_record = Hook("audit_record", "append one event to the audit log: audit.services")


def lock[Record: models.Model](record: Record) -> Record:
    """Return `record` re-read from the database under a row lock (`FOR NO KEY UPDATE`).

    Services read the row again inside their transaction, so the checks they make
    hold until they commit: a second caller waits for the lock, then sees the new
    state and is refused. The lock is PostgreSQL's FOR NO KEY UPDATE, not FOR UPDATE:
    it excludes other writers of the row just the same, but not the KEY SHARE lock
    that inserting a row which references it (an audit entry's user, a chat session's
    engagement) takes, so those inserts never wait on it (see `records.transactions`).
    """
    model = type(record)
    try:
        return model._default_manager.select_for_update(no_key=True).get(pk=record.pk)
    except model.DoesNotExist:
        raise Conflict(
            RECORD_GONE.format(label=_label(model, capital=True), record=record)
        ) from None


def snapshot(record: models.Model, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """Return the record's field values as JSON-ready data (foreign keys as ids)."""
    wanted = set(fields) if fields is not None else None
    values = {}
    for field in record._meta.concrete_fields:
        if wanted is not None and field.name not in wanted:
            continue
        if wanted is None and field.name in NOISE_FIELDS:
            continue
        value = getattr(record, field.attname)
        if isinstance(field, models.FileField):
            value = value.name or ""
        values[field.name] = value
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict, dict]:
    """Return (old, new): only the values that differ between two snapshots."""
    changed = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in changed}, {key: after[key] for key in changed}


def validate(record: models.Model, *, exclude: Iterable[str] = ()) -> None:
    """Run the model's field and constraint validation; raise InvalidInput with its messages."""
    try:
        record.full_clean(exclude=list(exclude))
    except ValidationError as error:
        raise InvalidInput(_validation_message(record, error)) from None


def save_with_history(
    record: models.Model,
    *,
    actor: AbstractUser | None,
    reason: str,
    created: bool = False,
) -> None:
    """Save the record, stamping the acting user and the simple-history change reason."""
    if hasattr(record, "updated_by_id"):
        if created:
            record.created_by = actor
        record.updated_by = actor
    record._history_user = actor
    record._change_reason = reason[:CHANGE_REASON_MAX_LENGTH]
    record.save()


def create_and_record[Record: models.Model](
    record: Record,
    *,
    actor: AbstractUser | None,
    action: str,
    reason: str,
    description: str,
    fields: Iterable[str] | None = None,
    **audit: Any,
) -> Record:
    """Save a new record (stamped, with its history reason) and record its audit event.

    The event's new value is a snapshot of `fields` (all of them when None);
    `audit` passes further AuditLog fields (session_id, severity, …).
    """
    save_with_history(record, actor=actor, reason=reason, created=True)
    audit_record(
        action=action,
        resource=record,
        user=actor,
        description=description,
        new_value=snapshot(record, fields),
        **audit,
    )
    return record


def apply_changes(
    record: models.Model,
    *,
    data: dict[str, Any],
    allowed: Iterable[str],
    reason: str,
) -> None:
    """Set the fields in `data` on the record, refusing any outside `allowed`."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInput(
            UNKNOWN_FIELDS.format(
                fields=", ".join(unknown), label=_label(type(record)), record=record, reason=reason
            )
        )
    for name, value in data.items():
        setattr(record, name, value)


def save_edit_and_record(
    record: models.Model,
    *,
    actor: AbstractUser | None,
    action: str,
    old: dict[str, Any],
    new: dict[str, Any],
    description: str = "",
) -> None:
    """Save an edited record (history reason names the fields) and record the audit event."""
    save_with_history(record, actor=actor, reason="Edited: " + ", ".join(sorted(new)))
    audit_record(
        action=action,
        resource=record,
        user=actor,
        description=description or f"{_label(type(record), capital=True)} edited: {record}",
        old_value=old,
        new_value=new,
    )


def move_and_record[Record: models.Model](
    record: Record,
    move: str,
    *,
    actor: AbstractUser | None,
    action: str | None,
    severity: str | None = None,
    description: str = "",
    metadata: dict | None = None,
    **move_arguments: Any,
) -> Record:
    """Apply a lifecycle move to a locked, checked record, save it and record the audit event.

    The lifecycle method changes the row in memory (and refuses a move its
    transition table forbids); this saves it with a change reason naming the move
    and appends one audit event (`action`) with the values that changed. Moves
    the AuditLog has no action for (`action=None`) are recorded by the history only.
    """
    before = snapshot(record)
    getattr(record, move)(**move_arguments)
    save_with_history(record, actor=actor, reason=_move_reason(move))
    old, new = changes(before, snapshot(record))
    if action is not None:
        extra = {} if severity is None else {"severity": severity}
        audit_record(
            action=action,
            resource=record,
            user=actor,
            description=description or f"{_move_reason(move)}: {record}",
            old_value=old,
            new_value=new,
            metadata={"move": move, **(metadata or {})},
            **extra,
        )
    return record


def soft_delete_and_record[Record: models.Model](
    record: Record,
    *,
    actor: AbstractUser | None,
    action: str,
    description: str = "",
) -> Record:
    """Soft-delete a locked, checked record (hide it, keep it) and record the audit event."""
    before = snapshot(record)
    record._change_reason = "Deleted"
    record.soft_delete(actor)
    old, new = changes(before, snapshot(record))
    audit_record(
        action=action,
        resource=record,
        user=actor,
        description=description or f"Deleted: {record}",
        old_value=old,
        new_value=new,
    )
    return record


def _move_reason(move: str) -> str:
    return move.replace("_", " ").capitalize()


def _label(model: type[models.Model], *, capital: bool = False) -> str:
    label = str(model._meta.verbose_name)
    return label[:1].upper() + label[1:] if capital else label


def _validation_message(record: models.Model, error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        parts = []
        for field, errors in error.message_dict.items():
            prefix = "" if field == "__all__" else f"{field}: "
            parts.extend(f"{prefix}{message}" for message in errors)
    else:
        parts = list(error.messages)
    return f"Invalid {_label(type(record))} “{record}”: " + " ".join(parts)
