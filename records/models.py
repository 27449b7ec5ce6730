"""The abstract records every domain model builds on, and their history-keeping querysets.

The fields every domain record carries for the audit trail (UUID key, tracked
timestamps and users, soft delete, trace id) and the lifecycle base every stateful
model uses. Abstract: each app's concrete models keep their own tables.

Bulk writes keep django-simple-history's trail: on tracked models
`RecordQuerySet.update_with_history()` saves row by row (one history row each), and
`update()` is that method, because Django's own bulk paths (`bulk_update()`, a
related manager's `remove()` / `clear()`) call `update()`.
"""

import uuid
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import FieldError
from django.db import models, transaction
from django.utils import timezone
from simple_history.utils import get_history_manager_for_model

from .exceptions import HistoryBypassRefused, InvalidTransition

BULK_CREATE_CONFLICTS_REFUSED = (
    "bulk_create() with ignore_conflicts or update_conflicts on {model} is refused: "
    "it cannot tell which rows it wrote, so their history would be wrong. "
    "Create or update the rows with save()."
)


def empty_dict():
    """Return a new empty dict (JSON field default; never a shared mutable)."""
    return {}


def empty_list():
    """Return a new empty list (JSON field default)."""
    return []


def is_history_tracked(model) -> bool:
    """Return whether django-simple-history keeps history of `model`."""
    return hasattr(model._meta, "simple_history_manager_attribute")


class RecordQuerySet(models.QuerySet):
    """QuerySet of the domain records: bulk writes keep the change history.

    django-simple-history records changes from `save()` and `delete()` signals,
    which SQL-level `update()` and `bulk_create()` skip. On tracked models these
    go through the history-aware path instead, so no change escapes the trail.
    `delete()` already sends `post_delete` for every row (simple-history listens,
    so Django cannot fast-delete) and needs nothing extra.
    """

    def update(self, **kwargs):
        """Update the matched rows; on a tracked model, through `update_with_history()`.

        No SQL UPDATE ever changes a tracked record behind its history: Django's own
        bulk paths (`bulk_update()`, a related manager's `remove()` and `clear()`)
        call `update()`, so it is the history-aware update on these models. Code of
        this project calls `update_with_history()`, which says what it does.
        """
        if not is_history_tracked(self.model):
            return super().update(**kwargs)
        return self.update_with_history(**kwargs)

    update.alters_data = True

    def update_with_history(self, **kwargs):
        """Update the matched rows one by one with `save()`, writing one history row each.

        Values may be expressions (F(), Case(), …): each is evaluated per row in
        the SELECT that locks the rows, so the history holds real values. The
        tracked `updated_at` stamp moves with the change. Return the number of rows
        updated, like `QuerySet.update()`.
        """
        self._not_support_combined_queries("update")
        if self.query.is_sliced:
            raise TypeError("Cannot update a query once a slice has been taken.")
        if self.query.distinct_fields:
            raise TypeError("Cannot call update() after .distinct(*fields).")
        for name in kwargs:
            field = self.model._meta.get_field(name)
            if not field.concrete or field.many_to_many or field.one_to_many:
                raise FieldError(f"Cannot update model field {field!r} (only concrete fields).")
        update_fields = set(kwargs)
        if any(f.name == "updated_at" for f in self.model._meta.concrete_fields):
            update_fields.add("updated_at")
        expressions = {
            f"history_update_value_{index}": (name, value)
            for index, (name, value) in enumerate(kwargs.items())
            if hasattr(value, "resolve_expression")
        }
        rows = (
            self.model._base_manager.db_manager(self.db)
            .filter(pk__in=self.values("pk"))
            .order_by("pk")
            .select_for_update(no_key=True)
            .annotate(**{alias: value for alias, (_name, value) in expressions.items()})
        )
        updated = 0
        with transaction.atomic(using=self.db, savepoint=False):
            for row in rows:
                for name, value in kwargs.items():
                    setattr(row, name, value)
                for alias, (name, _value) in expressions.items():
                    setattr(row, name, getattr(row, alias))
                row.save(using=self.db, update_fields=update_fields)
                updated += 1
        self._result_cache = None
        return updated

    update_with_history.alters_data = True

    def bulk_create(
        self,
        objs,
        batch_size=None,
        ignore_conflicts=False,
        update_conflicts=False,
        update_fields=None,
        unique_fields=None,
    ):
        """Insert the objects in bulk and write their "created" history rows in bulk.

        This is what `simple_history.utils.bulk_create_with_history` does; do not
        wrap this in that helper, which would record every row twice. Upserts and
        ignored conflicts are refused: they hide which rows were written.
        """
        if not is_history_tracked(self.model):
            return super().bulk_create(
                objs,
                batch_size=batch_size,
                ignore_conflicts=ignore_conflicts,
                update_conflicts=update_conflicts,
                update_fields=update_fields,
                unique_fields=unique_fields,
            )
        if ignore_conflicts or update_conflicts:
            raise HistoryBypassRefused(
                BULK_CREATE_CONFLICTS_REFUSED.format(model=self.model._meta.label)
            )
        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, batch_size=batch_size)
            history = get_history_manager_for_model(self.model)
            history.db_manager(self.db).bulk_history_create(created, batch_size=batch_size)
        return created

    bulk_create.alters_data = True


class LiveRecordManager(models.Manager.from_queryset(RecordQuerySet)):
    """Default manager of soft-deletable records: hides soft-deleted rows."""

    def get_queryset(self):
        return super().get_queryset().filter(is_deleted=False)


RecordManager = models.Manager.from_queryset(RecordQuerySet)


def acting_user_field(**options) -> models.ForeignKey:
    """Return a reference to the user who did something to a record (kept if they go).

    Read-only in forms and without a reverse accessor: these stamps record who acted;
    they are not relations to browse from the user.
    """
    defaults = {
        "on_delete": models.SET_NULL,
        "null": True,
        "blank": True,
        "editable": False,
        "related_name": "+",
    }
    return models.ForeignKey(settings.AUTH_USER_MODEL, **(defaults | options))


class UUIDModel(models.Model):
    """A record identified by a random UUID, never by a guessable integer."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    objects = RecordManager()

    class Meta:
        abstract = True


class TrackedModel(UUIDModel):
    """A record that knows when and by whom it was created and last changed."""

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, editable=False)
    created_by = acting_user_field()
    updated_by = acting_user_field()

    class Meta:
        abstract = True


class SoftDeleteModel(models.Model):
    """A record that is hidden, not destroyed, when deleted; `all_objects` still sees it."""

    is_deleted = models.BooleanField(default=False, db_index=True, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    deleted_by = acting_user_field()

    objects = LiveRecordManager()
    all_objects = RecordManager()

    class Meta:
        abstract = True

    def soft_delete(self, user=None):
        """Hide the record from the default manager, recording who deleted it and when."""
        self.is_deleted = True
        self.deleted_at = timezone.now()
        self.deleted_by = user
        self._history_user = user
        self.save(update_fields=["is_deleted", "deleted_at", "deleted_by", "updated_at"])

    soft_delete.alters_data = True

    def restore(self, user=None):
        """Bring a soft-deleted record back."""
        self.is_deleted = False
        self.deleted_at = None
        self.deleted_by = None
        self._history_user = user
        self.save(update_fields=["is_deleted", "deleted_at", "deleted_by", "updated_at"])

    restore.alters_data = True


class TraceableModel(models.Model):
    """A record that names the AI agent trace that produced or touched it."""

    trace_id = models.CharField(max_length=64, null=True, blank=True, db_index=True)

    class Meta:
        abstract = True


class LifecycleModel(models.Model):
    """A record with a `status` that moves only along its transition table.

    `TRANSITIONS` maps a move name to (states it may start from, resulting state).
    Lifecycle methods call `_move()`, which changes the row in memory only; the
    services save it, so a refused move never changes anything.
    """

    TRANSITIONS: ClassVar[dict] = {}

    class Meta:
        abstract = True

    def can(self, move: str) -> bool:
        """Return whether `move` is allowed from the current status."""
        sources, _target = self.TRANSITIONS[move]
        return self.status in sources

    def available_moves(self) -> list[str]:
        """Return the moves allowed from the current status, in table order."""
        return [move for move in self.TRANSITIONS if self.can(move)]

    def check_move(self, move: str) -> None:
        """Raise InvalidTransition unless `move` is allowed from the current status."""
        sources, _target = self.TRANSITIONS[move]
        if self.status not in sources:
            raise InvalidTransition(obj=self, move=move, current=self.status, allowed_from=sources)

    def _move(self, move: str) -> str:
        """Apply `move` to the status in memory; return the previous status."""
        self.check_move(move)
        _sources, target = self.TRANSITIONS[move]
        previous = self.status
        self.status = target
        return previous

    _move.alters_data = True
