"""Reads of the audit trail: an engagement's timeline, and whether a user is in the trail."""

from __future__ import annotations

import datetime
import heapq
import itertools
import uuid
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from simple_history.utils import get_history_manager_for_model, get_history_model_for_model

from records.models import is_history_tracked
from records.scoping import ENGAGEMENT_SCOPES

from .models import AuditLog

TIMELINE_DEFAULT_LIMIT = 200
HISTORY_TYPE_LABELS = {"+": "created", "~": "changed", "-": "deleted"}
# Bookkeeping fields that change on every save and say nothing on a timeline.
TIMELINE_IGNORED_FIELDS = ("updated_at", "updated_by")


@dataclass(frozen=True)
class FieldChange:
    """One field of a record that changed between two history rows."""

    field: str
    old: object
    new: object


@dataclass(frozen=True)
class TimelineEntry:
    """One event on an engagement's timeline: an AuditLog entry or a history row."""

    at: datetime.datetime
    source: str  # "audit" or "history"
    kind: str  # the audit action, or created / changed / deleted
    object_type: str
    object_id: uuid.UUID | None
    object_label: str
    user: object | None
    description: str = ""
    severity: str = ""
    changes: tuple[FieldChange, ...] = field(default_factory=tuple)
    record: object = None


def _history_models():
    """Yield the historical model of every model django-simple-history tracks."""
    for model in apps.get_models():
        if is_history_tracked(model):
            yield get_history_model_for_model(model)


def user_has_audit_trail(user) -> bool:
    """Return whether `user` acted in, or is named by, the audit log or any change history.

    Such users are deactivated, never deleted: deleting them would erase or
    null out who did what.
    """
    if user.pk is None:
        return False
    if AuditLog.objects.filter(user_id=user.pk).exists():
        return True
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    for history_model in _history_models():
        user_fields = [
            f.attname
            for f in history_model._meta.concrete_fields
            if f.is_relation and f.related_model is user_model
        ]
        condition = Q.create([(name, user.pk) for name in user_fields], connector=Q.OR)
        if user_fields and history_model._default_manager.filter(condition).exists():
            return True
    return False


def _timeline_history_sources(engagement):
    """Return (model, history queryset) for the engagement and each of its objects.

    The models on the timeline, and which of their history rows belong to it, are
    those their apps registered (`records.scoping`, an engagement scope's `timeline`).
    """
    pk = engagement.pk
    sources = []
    for scope in ENGAGEMENT_SCOPES.values():
        if scope.timeline is not None:
            model = scope.model
            sources.append((model, get_history_manager_for_model(model).filter(scope.timeline(pk))))
    return tuple(sources)


def _record_label(record) -> str:
    for name in ("name", "title"):
        value = getattr(record, name, None)
        if value:
            return str(value)
    if hasattr(record, "role"):
        return f"{record.get_role_display()} (user {record.user_id})"
    return str(record.id)


def _history_entries(model, records) -> list[TimelineEntry]:
    """Turn history rows (newest first) into timeline entries with their field changes.

    A change is diffed against the row before it when that row is in the same
    window; the oldest change of each object in the window shows no field list.
    """
    previous_of = {}
    by_object = {}
    for record in records:
        by_object.setdefault(record.id, []).append(record)
    for rows in by_object.values():
        for newer, older in itertools.pairwise(rows):
            previous_of[newer.history_id] = older
    verbose_name = str(model._meta.verbose_name)
    entries = []
    for record in records:
        changes = ()
        older = previous_of.get(record.history_id)
        if record.history_type == "~" and older is not None:
            delta = record.diff_against(older, excluded_fields=TIMELINE_IGNORED_FIELDS)
            changes = tuple(FieldChange(c.field, c.old, c.new) for c in delta.changes)
        entries.append(
            TimelineEntry(
                at=record.history_date,
                source="history",
                kind=HISTORY_TYPE_LABELS.get(record.history_type, record.history_type),
                object_type=verbose_name,
                object_id=record.id,
                object_label=_record_label(record),
                user=record.history_user,
                description=record.history_change_reason or "",
                changes=changes,
                record=record,
            )
        )
    return entries


def engagement_timeline(engagement, *, limit: int = TIMELINE_DEFAULT_LIMIT) -> list[TimelineEntry]:
    """Return the latest `limit` events of an engagement, newest first.

    Merges the engagement's AuditLog events (decisions, downloads, agent calls…)
    with the django-simple-history rows of the engagement, its team members,
    workflow runs, artefacts, approvals and chat sessions (the models whose apps put
    them on the timeline). One query per source, each limited and served by an index;
    the merge happens in memory.
    """
    audit_events = [
        TimelineEntry(
            at=event.created_at,
            source="audit",
            kind=event.action,
            object_type=event.resource_type,
            object_id=event.resource_id,
            object_label=event.get_action_display(),
            user=event.user,
            description=event.description,
            severity=event.severity,
            record=event,
        )
        for event in AuditLog.objects.filter(engagement_id=engagement.pk)
        .select_related("user")
        .order_by("-created_at", "-sequence")[:limit]
    ]
    streams = [audit_events]
    for model, history in _timeline_history_sources(engagement):
        records = list(
            history.select_related("history_user").order_by("-history_date", "-history_id")[:limit]
        )
        streams.append(_history_entries(model, records))
    merged = heapq.merge(*streams, key=lambda entry: entry.at, reverse=True)
    return list(itertools.islice(merged, limit))


@dataclass(frozen=True)
class AuditLogBranches:
    """Where a user's share of the log is read from: their engagements' entries, and their own.

    `entries`: the whole log under the list's filters, not yet narrowed to the user
    (each branch narrows it to its own, which its index answers).
    """

    engagement_ids: tuple[uuid.UUID, ...]
    user_id: int
    entries: QuerySet | None = None


def audit_log_first_in_branches(
    page: QuerySet,
    *,
    branches: AuditLogBranches,
    size: int,
    descending: bool = True,
    **bound,
) -> QuerySet:
    """Return `page` narrowed to its first `size` entries in sequence order, read by branch.

    `page`: the entries a user may see (of their engagements, or their own), filtered.
    `bound`: the lookups on sequence that bound it further (a cursor's position). The
    first `size` of them in sequence order are among the first `size` of some branch,
    an engagement's entries (read by the (engagement_id, sequence) index) or the
    user's own (by the (user, sequence) index). So one statement reads at most `size`
    entries of each branch under the same filters and bound (a LATERAL join over the
    engagement ids), merges them without duplicates, keeps the first `size` and looks
    those up by sequence: its cost grows with the user's engagements and the page,
    never with the log nor with how long ago the engagements went quiet, where a walk
    of the sequence index down to their entries passes every newer one (issue 18).
    PostgreSQL only (LATERAL, unnest).
    """
    if branches.entries.query.is_empty() or page.query.is_empty():
        return page.none()  # a filter matched nothing (e.g. a time range with no entries)
    order = "-sequence" if descending else "sequence"
    direction = "DESC" if descending else "ASC"
    candidates = branches.entries.filter(**bound).order_by(order).values("sequence")
    engagement_sql, engagement_params = candidates.filter(engagement_id=RawSQL("branch.id", ()))[
        :size
    ].query.sql_with_params()
    own_sql, own_params = candidates.filter(user_id=branches.user_id)[:size].query.sql_with_params()
    first = (
        "SELECT picked.sequence FROM unnest(%s::uuid[]) AS branch(id) "
        f"CROSS JOIN LATERAL ({engagement_sql}) AS picked "
        f"UNION ({own_sql}) ORDER BY 1 {direction} LIMIT {int(size)}"
    )
    # `= ANY(ARRAY(…))`, not `IN (…)`: the page is then looked up by sequence, entry by
    # entry, never joined to a read of the user's whole share of the log.
    quote = connection.ops.quote_name
    column = f"{quote(page.model._meta.db_table)}.{quote('sequence')}"
    return page.filter(
        RawSQL(
            f"{column} = ANY(ARRAY({first}))",
            (list(branches.engagement_ids), *engagement_params, *own_params),
            output_field=BooleanField(),
        )
    )
