"""What a backup holds: the scope (everything, or one engagement) and its tables in restore order.

Which rows of a model belong to one engagement is what the model's app registered
(`records.scoping`, in its AppConfig.ready()); the audit app imports none of them.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import DEFAULT_DB_ALIAS, models
from django.db.models import Q
from simple_history.utils import get_history_model_for_model

from records.models import is_history_tracked
from records.scoping import ENGAGEMENT_SCOPES, OUTSIDE_ENGAGEMENTS

from ..choices import BackupType
from ..models import AuditLog
from .archive import DATA_PREFIX

# Rows that describe this machine's archives, not the business records: a backup never
# holds them and a restore never writes them (see README, section "Maintenance commands").
CATALOGUE_LABELS = frozenset(
    {
        "audit.backup",
        "audit.historicalbackup",
        "audit.recovery",
        "audit.historicalrecovery",
        "audit.auditchainhead",
    }
)
AUDIT_LABEL = "audit.auditlog"


# How each project model reaches one engagement (rows of every state, soft-deleted ones
# included), and the models an engagement backup leaves out with the reason: each app
# registers its models in its AppConfig.ready() (records.scoping). A test checks that
# every project model is in one of them.
ENGAGEMENT_SCOPE = ENGAGEMENT_SCOPES
NOT_ENGAGEMENT_SCOPED = OUTSIDE_ENGAGEMENTS


@dataclass(frozen=True)
class BackupScope:
    """What a backup holds: everything (`engagement_id` None) or one engagement."""

    engagement_id: uuid.UUID | None = None

    @property
    def kind(self) -> str:
        """Return "engagement" or "full"."""
        return "full" if self.engagement_id is None else "engagement"

    @property
    def backup_type(self) -> str:
        """Return the Backup.backup_type of a backup of this scope."""
        return BackupType.FULL if self.engagement_id is None else BackupType.ENGAGEMENT

    def as_json(self) -> dict:
        """Return the scope as the manifest records it."""
        engagement_id = None if self.engagement_id is None else str(self.engagement_id)
        return {"type": self.kind, "engagement_id": engagement_id}

    @classmethod
    def from_json(cls, data: dict) -> BackupScope:
        """Return the scope a manifest records."""
        if data.get("type") == "full":
            return cls()
        if data.get("type") == "engagement":
            return cls(engagement_id=uuid.UUID(str(data["engagement_id"])))
        raise ValueError(f"unknown scope {data!r}")


class TableKind(enum.StrEnum):
    """The role a table plays in a backup (it decides how restore treats its rows)."""

    GROUPS = "groups"
    USERS = "users"
    RECORDS = "records"
    HISTORY = "history"
    AUDIT = "audit"


@dataclass(frozen=True)
class Table:
    """One table of a backup: its model, its role and, when writing, the rows in scope.

    `complete` is false when the rows are only those changed since the base backup (an
    incremental or differential archive); `deleted` then names the rows deleted since.
    """

    model: type[models.Model]
    kind: TableKind
    queryset: models.QuerySet | None = None
    complete: bool = True
    deleted: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """Return "app_label.model_name"."""
        return self.model._meta.label_lower

    @property
    def member(self) -> str:
        """Return the archive member that holds the rows."""
        return f"{DATA_PREFIX}{self.label}.jsonl"


def _project_app_configs():
    """Return the apps of this project (top-level packages next to manage.py)."""
    base = Path(settings.BASE_DIR).resolve()
    return [config for config in apps.get_app_configs() if Path(config.path).parent == base]


def record_models() -> list[type[models.Model]]:
    """Return the project's models that hold business records, parents before children.

    History models, the audit log (archived as its own kind) and the backup catalogue
    are left out. Found at run time, so a model added later is backed up too.
    """
    candidates, history = [], set()
    for config in _project_app_configs():
        for model in config.get_models():
            if model._meta.proxy or not model._meta.managed:
                continue
            candidates.append(model)
            if is_history_tracked(model):
                history.add(get_history_model_for_model(model))
    records = [
        model
        for model in candidates
        if model not in history
        and model._meta.label_lower not in CATALOGUE_LABELS
        and model._meta.label_lower != AUDIT_LABEL
    ]
    return _parents_first(records)


def _parents_first(record_list: list[type[models.Model]]) -> list[type[models.Model]]:
    """Order models so that the targets of foreign keys come first (ties by label)."""
    by_label = {model._meta.label_lower: model for model in record_list}
    waiting = {
        label: {
            field.related_model._meta.label_lower
            for field in model._meta.concrete_fields
            if field.is_relation
            and field.related_model is not model
            and field.related_model._meta.label_lower in by_label
        }
        for label, model in by_label.items()
    }
    ordered = []
    while waiting:
        # A cycle cannot block: foreign keys are checked at commit, so any order loads.
        ready = sorted(label for label, needs in waiting.items() if not needs) or [min(waiting)]
        for label in ready:
            ordered.append(by_label[label])
            del waiting[label]
        for needs in waiting.values():
            needs.difference_update(ready)
    return ordered


def scope_tables(scope: BackupScope, using: str = DEFAULT_DB_ALIAS) -> list[Table]:
    """Return the tables of a backup in restore order, each with its rows in scope."""
    user_model = get_user_model()
    engagement_id = scope.engagement_id
    records, histories = [], []
    for model in record_models():
        rows = model._base_manager.using(using).order_by("pk")
        if engagement_id is not None:
            scope = ENGAGEMENT_SCOPE.get(model._meta.label_lower)
            if scope is None:
                continue
            rows = rows.filter(scope.rows(engagement_id))
        records.append(Table(model, TableKind.RECORDS, rows))
        if is_history_tracked(model):
            history_model = get_history_model_for_model(model)
            history_rows = history_model._base_manager.using(using).order_by("pk")
            if engagement_id is not None:
                history_rows = history_rows.filter(
                    _history_scope(model, history_model, rows, engagement_id)
                )
            histories.append(Table(history_model, TableKind.HISTORY, history_rows))
    audit_rows = AuditLog.objects.using(using).order_by("sequence")
    if engagement_id is not None:
        audit_rows = audit_rows.filter(engagement_id=engagement_id)
    scoped = [*records, *histories, Table(AuditLog, TableKind.AUDIT, audit_rows)]

    if engagement_id is None:
        users = user_model._base_manager.using(using).order_by("pk")
        groups = Group.objects.using(using).order_by("pk")
        return [
            Table(Group, TableKind.GROUPS, groups),
            Table(user_model, TableKind.USERS, users),
            *scoped,
        ]
    # An engagement backup carries the users its rows name, so their foreign keys can
    # be restored into a database that lacks them; accounts stay out of it otherwise.
    user_ids = _referenced_user_ids(scoped, user_model)
    users = user_model._base_manager.using(using).filter(pk__in=sorted(user_ids)).order_by("pk")
    return [Table(user_model, TableKind.USERS, users), *scoped]


def _history_scope(model, history_model, rows: models.QuerySet, engagement_id) -> Q:
    """Return the history rows of an engagement's rows, deleted rows' history included."""
    scope = Q(id__in=rows.values("pk"))
    extra = ENGAGEMENT_SCOPE[model._meta.label_lower].history
    if extra is not None:
        return scope | extra(engagement_id)
    if any(f.name == "engagement" for f in history_model._meta.concrete_fields):
        return scope | Q(engagement_id=engagement_id)
    return scope


def _user_fields(model, user_model) -> list[models.Field]:
    return [
        f for f in model._meta.concrete_fields if f.is_relation and f.related_model is user_model
    ]


def _referenced_user_ids(tables: Iterable[Table], user_model) -> set:
    """Return the ids of every user a row of these tables points to."""
    ids = set()
    for table in tables:
        for user_field in _user_fields(table.model, user_model):
            values = (
                table.queryset.exclude(**{f"{user_field.attname}__isnull": True})
                .order_by()
                .values_list(user_field.attname, flat=True)
                .distinct()
            )
            ids.update(values)
    return ids


def serializer_options(table: Table, scope: BackupScope) -> dict:
    """Return the serializer options of a table (the same for writing and comparing)."""
    if table.kind == TableKind.GROUPS:
        return {"use_natural_foreign_keys": True}
    if table.kind == TableKind.USERS:
        if scope.engagement_id is None:
            # Groups and permissions by natural key: permission ids differ per database.
            return {"use_natural_foreign_keys": True}
        # An engagement backup restores missing accounts, never their groups or rights.
        return {"fields": [f.attname for f in table.model._meta.local_fields if not f.primary_key]}
    return {}


def _file_fields(model) -> list[models.FileField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, models.FileField)]
