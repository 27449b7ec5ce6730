"""An engagement's timeline as a file note (issue 17): one plain sentence per business event.

The audit log records each business event once; django-simple-history records the
rows it changed. Read together they say everything twice, so the note takes each
audit event as the event and folds under it the history rows it caused (the same
object, the same person, within a moment): their field changes become its details.
A history row no event explains (a run's progress, its provenance being recorded) is
an event of its own. People are named by name (with the qualifications an approver
held), objects by name, values as people read them (`records.formatting`).

Access (file reads, sign-ins) and chat are kept but hidden unless asked for, and so is
a run's step-by-step progress. This module only reads: it imports no domain app (the
related objects are looked up by their labels, in one query per model).
"""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models
from django.urls import NoReverseMatch, reverse

from records.formatting import format_date, format_datetime, humanize_code, person, readable_value

from .choices import AuditAction
from .selectors import TimelineEntry, engagement_timeline

A = AuditAction
# The kinds of event a reader filters by; the noisy ones are hidden by default.
KINDS = {
    "engagement": "Engagement and team",
    "runs": "Workflow runs",
    "artefacts": "Artefacts and data",
    "review": "Approvals and review",
    "access": "File reads and sign-ins",
    "chat": "Assistant and chat",
    "progress": "Run progress",
}
HIDDEN_BY_DEFAULT = frozenset({"access", "chat", "progress"})
KIND_OF_ACTION = {
    A.ENGAGEMENT_CREATE: "engagement",
    A.ENGAGEMENT_UPDATE: "engagement",
    A.ENGAGEMENT_DELETE: "engagement",
    A.ENGAGEMENT_ARCHIVE: "engagement",
    A.PERMISSION_CHANGE: "engagement",
    A.SETTINGS_CHANGE: "engagement",
    A.WORKFLOW_CREATE: "runs",
    A.WORKFLOW_UPDATE: "runs",
    A.WORKFLOW_START: "runs",
    A.WORKFLOW_COMPLETE: "runs",
    A.WORKFLOW_FAIL: "runs",
    A.WORKFLOW_CANCEL: "runs",
    A.WORKFLOW_REPLAY: "runs",
    A.ARTEFACT_CREATE: "artefacts",
    A.ARTEFACT_UPDATE: "artefacts",
    A.ARTEFACT_DELETE: "artefacts",
    A.DATA_RELIANCE_RECORD: "artefacts",
    A.DATA_RELIANCE_UPDATE: "artefacts",
    A.DATA_EXPORT: "artefacts",
    A.DATA_IMPORT: "artefacts",
    A.ARTEFACT_ACCESS: "access",
    A.LOGIN: "access",
    A.LOGOUT: "access",
    A.PASSWORD_CHANGE: "access",
    A.SESSION_CREATE: "chat",
    A.SESSION_DELETE: "chat",
    A.AGENT_INVOKE: "chat",
    A.AGENT_COMPLETE: "chat",
    A.AGENT_ERROR: "chat",
}
KIND_OF_HISTORY_MODEL = {
    "engagement": "engagement",
    "engagementmember": "engagement",
    "workflowrun": "runs",
    "artefact": "artefacts",
    "datareliance": "artefacts",
    "chatsession": "chat",
    "chatmessage": "chat",
}
# What the event did, in the past tense: by audit action, then by the move it made.
VERBS = {
    A.ENGAGEMENT_CREATE: "opened",
    A.ENGAGEMENT_DELETE: "deleted",
    A.ENGAGEMENT_ARCHIVE: "archived",
    A.WORKFLOW_CREATE: "created",
    A.WORKFLOW_START: "started",
    A.WORKFLOW_COMPLETE: "completed",
    A.WORKFLOW_FAIL: "recorded the failure of",
    A.WORKFLOW_CANCEL: "cancelled",
    A.WORKFLOW_REPLAY: "replayed",
    A.ARTEFACT_CREATE: "stored",
    A.ARTEFACT_UPDATE: "changed",
    A.ARTEFACT_DELETE: "deleted",
    A.ARTEFACT_ACCESS: "read the file of",
    A.APPROVAL_REQUEST: "asked for",
    A.APPROVAL_APPROVE: "approved",
    A.APPROVAL_REJECT: "rejected",
    A.APPROVAL_REVOKE: "revoked",
    A.APPROVAL_EXPIRE: "expired",
    A.APPROVAL_UPDATE: "changed the request for",
    A.REVIEW_POINT_RAISE: "raised a review point on",
    A.REVIEW_POINT_RESPOND: "answered a review point on",
    A.REVIEW_POINT_RESOLVE: "resolved a review point on",
    A.REVIEW_POINT_REOPEN: "reopened a review point on",
    A.DATA_RELIANCE_RECORD: "recorded the data reliance on",
    A.DATA_RELIANCE_UPDATE: "changed the data reliance on",
    A.DISCLOSURE_CHECKLIST_UPDATE: "prepared",
    A.DISCLOSURE_CHECKLIST_COMPLETE: "completed",
    A.LOGIN: "signed in",
    A.LOGOUT: "signed out",
}
MOVE_VERBS = {
    "activate": "activated",
    "hold": "put on hold",
    "put_on_hold": "put on hold",
    "resume": "resumed",
    "complete": "completed",
    "archive": "archived",
    "cancel": "cancelled",
    "queue": "queued",
    "start": "started",
    "pause": "paused",
    "fail": "recorded the failure of",
    "await_approval": "submitted for approval",
    "submit": "submitted for review",
}
# The word for an object before its name ("workflow run “…”"); approvals and
# checklists name themselves ("the final sign-off of …").
NOUNS = {
    "engagement": "engagement",
    "workflowrun": "workflow run",
    "artefact": "artefact",
    "datareliance": "",
    "approval": "the",
    "reviewpoint": "",
    "disclosurechecklist": "the",
}
# Who said what, quoted after the sentence: (where in the event, which key).
DETAILS = {
    A.APPROVAL_APPROVE: ("new_value", "decision_notes"),
    A.APPROVAL_REJECT: ("new_value", "rejection_reason"),
    A.APPROVAL_REVOKE: ("new_value", "revocation_reason"),
    A.WORKFLOW_FAIL: ("new_value", "error_message"),
    A.REVIEW_POINT_RAISE: ("new_value", "text"),
    A.REVIEW_POINT_RESPOND: ("new_value", "response"),
    A.REVIEW_POINT_RESOLVE: ("new_value", "resolution_notes"),
    A.REVIEW_POINT_REOPEN: ("new_value", "reopen_reason"),
    A.APPROVAL_REQUEST: ("new_value", "request_notes"),
}
# History reasons no audit event explains, as what the person did.
HISTORY_SENTENCES = {
    "Await approval": "submitted {object} for approval",
    "Provenance recorded": "recorded what {object} ran with",
    "Created": "created {object}",
    "Uploaded": "uploaded {object}",
    "Added to the team": "added {object} to the team",
    "Deleted": "deleted {object}",
}
PROGRESS_PREFIX = "Progress"
# A history row belongs to the event of the same object and person this close in time.
FOLD_WINDOW = datetime.timedelta(seconds=2)
# Field values longer than this read "(updated)": the object's page shows them whole.
LONG_VALUE = 160
# Bookkeeping, or said by the sentence itself (an approver's qualifications).
FIELD_SKIPPED = frozenset({"metrics", "current_step", "trace_id", "approver_qualifications"})


@dataclass
class FieldChangeNote:
    """One field an event changed, as people read it."""

    label: str
    old: str
    new: str
    field: str = ""


@dataclass
class FileNoteEntry:
    """One business event: when, what kind, who, and the sentence that says it."""

    at: datetime.datetime
    kind: str
    sentence: str
    user: Any = None
    object_url: str = ""
    object_name: str = ""
    severity: str = ""
    changes: list[FieldChangeNote] = field(default_factory=list)

    @property
    def kind_label(self) -> str:
        """Return the kind as people read it."""
        return KINDS.get(self.kind, "Other")

    @property
    def hidden_by_default(self) -> bool:
        """Return whether the note hides this kind unless asked for."""
        return self.kind in HIDDEN_BY_DEFAULT


@dataclass
class FileNoteFilter:
    """What the reader asked for: kinds, a person, a date range."""

    kinds: frozenset[str] = frozenset(set(KINDS) - HIDDEN_BY_DEFAULT)
    person_id: int | None = None
    since: datetime.date | None = None
    until: datetime.date | None = None

    def without_person(self) -> FileNoteFilter:
        """Return the same filter for everyone (to list the people one may pick)."""
        return FileNoteFilter(kinds=self.kinds, since=self.since, until=self.until)

    def keeps(self, entry: FileNoteEntry) -> bool:
        """Return whether `entry` is on the filtered note."""
        if entry.kind not in self.kinds:
            return False
        if self.person_id is not None and getattr(entry.user, "pk", None) != self.person_id:
            return False
        day = entry.at.date()
        if self.since is not None and day < self.since:
            return False
        return self.until is None or day <= self.until


def engagement_file_note(
    engagement, *, limit: int = 2000, note_filter: FileNoteFilter | None = None
) -> list[FileNoteEntry]:
    """Return the engagement's business events as file-note entries, newest first.

    Reads the latest `limit` audit events and history rows (`engagement_timeline`),
    folds each history row under the event that caused it, and keeps what
    `note_filter` asks for (by default: everything but access, chat and progress).
    """
    note_filter = note_filter or FileNoteFilter()
    timeline = engagement_timeline(engagement, limit=limit)
    events = [entry for entry in timeline if entry.source == "audit"]
    history = [entry for entry in timeline if entry.source == "history"]
    names = _Names(timeline)
    folded: dict[int, list[TimelineEntry]] = defaultdict(list)
    by_object = defaultdict(list)
    for index, event in enumerate(events):
        if event.object_id is not None:
            by_object[event.object_id].append(index)
    # A service saves the row, then records its event: each event explains the one row
    # of its object saved just before it by the same person (the closest pair first).
    pairs = sorted(
        (events[index].at - row.at, number, index)
        for number, row in enumerate(history)
        for index in by_object.get(row.object_id, ())
        if datetime.timedelta(0) <= events[index].at - row.at <= FOLD_WINDOW
        and getattr(events[index].user, "pk", None) == getattr(row.user, "pk", None)
    )
    explained: set[int] = set()
    for _delta, number, index in pairs:
        if number in explained or folded.get(index):
            continue
        folded[index].append(history[number])
        explained.add(number)
    unexplained = [row for number, row in enumerate(history) if number not in explained]
    entries = [
        _event_entry(event, folded.get(index, ()), names) for index, event in enumerate(events)
    ]
    entries += [_history_entry(row, names) for row in unexplained]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return [entry for entry in entries if note_filter.keeps(entry)]


def people_on(entries: list[FileNoteEntry]) -> list[tuple[int, str]]:
    """Return (id, name) of everyone who acted on the note, by name."""
    people = {entry.user.pk: person(entry.user) for entry in entries if entry.user is not None}
    return sorted(people.items(), key=lambda item: item[1])


def _event_entry(event: TimelineEntry, rows, names: _Names) -> FileNoteEntry:
    record = event.record
    action = event.kind
    new_value = record.new_value if isinstance(record.new_value, dict) else {}
    metadata = record.metadata if isinstance(record.metadata, dict) else {}
    qualifications = ()
    if action in (A.APPROVAL_APPROVE, A.APPROVAL_REJECT):
        held = (new_value.get("approver_qualifications") or {}).get("qualifications") or ()
        qualifications = tuple(q.get("designation") for q in held if q.get("designation"))
    who = person(event.user, qualifications=qualifications)
    label = _object_label(event.description)
    noun = NOUNS.get(event.object_type, "")
    if noun == "the" and label:
        target = f"the {label[:1].lower()}{label[1:]}"
    else:
        target = f"{noun} “{label}”".strip() if label and noun else (f"“{label}”" if label else "")
    verb = VERBS.get(action)
    move = metadata.get("move")
    if move and (verb is None or action in (A.ENGAGEMENT_UPDATE, A.WORKFLOW_UPDATE)):
        verb = MOVE_VERBS.get(move, humanize_code(move).lower() or str(move))
    member = next((row for row in rows if hasattr(row.record, "role")), None)
    if action == A.PERMISSION_CHANGE and member is not None:
        team = {
            "created": "added {name} to the team as {role}",
            "deleted": "removed {name} ({role}) from the team",
        }
        sentence = f"{who} " + team.get(member.kind, "made {name} {role} on the team").format(
            name=names.member(member), role=member.record.get_role_display().lower()
        )
    elif action == A.PERMISSION_CHANGE or verb is None or not target:
        sentence = f"{who}: {event.description}" if event.description else f"{who} acted"
    else:
        sentence = f"{who} {verb} {target}"
    where, key = DETAILS.get(action, ("", ""))
    said = new_value.get(key) if where == "new_value" else None
    if said:
        sentence += f": ‘{_short(str(said), 200)}’"
    entry = FileNoteEntry(
        at=event.at,
        kind=KIND_OF_ACTION.get(action, "review" if event.object_type in NOUNS else "engagement"),
        sentence=sentence,
        user=event.user,
        object_url=names.url(event.object_type, event.object_id),
        object_name=label,
        severity=record.severity if record.severity not in ("", "info") else "",
    )
    if action in (
        A.APPROVAL_REQUEST,
        A.APPROVAL_APPROVE,
        A.APPROVAL_REJECT,
    ) or event.object_type in (
        "approval",
        "reviewpoint",
        "disclosurechecklist",
    ):
        entry.kind = KIND_OF_ACTION.get(action, "review")
    for row in rows:
        # What the sentence quotes is not repeated below it.
        entry.changes += [c for c in _changes(row, names) if c.field != key]
    return entry


def _history_entry(row: TimelineEntry, names: _Names) -> FileNoteEntry:
    reason = row.description or row.kind
    model_name = row.record._meta.model_name.removeprefix("historical")
    target = f"{row.object_type} “{names.label(row)}”"
    template = HISTORY_SENTENCES.get(reason)
    if reason.startswith(f"{PROGRESS_PREFIX}: "):
        step = reason.split(": ", 1)[1]
        sentence = f"{target[:1].upper()}{target[1:]} reached {step} ({person(row.user)})"
    elif template is not None:
        sentence = f"{person(row.user)} {template.format(object=target)}"
    else:
        sentence = f"{person(row.user)} changed {target} ({reason[:1].lower()}{reason[1:]})"
    kind = KIND_OF_HISTORY_MODEL.get(model_name, "review")
    if reason.startswith(PROGRESS_PREFIX):
        kind = "progress"
    return FileNoteEntry(
        at=row.at,
        kind=kind,
        sentence=sentence,
        user=row.user,
        object_url=names.url(model_name, row.object_id),
        object_name=names.label(row),
        changes=_changes(row, names),
    )


def _changes(row: TimelineEntry, names: _Names) -> list[FieldChangeNote]:
    model = row.record.instance_type
    notes = []
    for change in row.changes:
        if change.field in FIELD_SKIPPED:
            continue
        try:
            model_field = model._meta.get_field(change.field)
        except Exception:
            model_field = None
        label = str(model_field.verbose_name) if model_field is not None else change.field
        notes.append(
            FieldChangeNote(
                label=label[:1].upper() + label[1:],
                field=change.field,
                old=names.value(model_field, change.old),
                new=names.value(model_field, change.new),
            )
        )
    return notes


def _object_label(description: str) -> str:
    """Return the object's name from an audit description ("Approval granted: <name>")."""
    if ": " in description:
        return description.split(": ", 1)[1]
    return ""


def _short(text: str, length: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else f"{text[: length - 1]}…"


class _Names:
    """The names of the users and objects the history rows point at: one query per model."""

    def __init__(self, timeline: list[TimelineEntry]):
        wanted: dict[type[models.Model], set] = defaultdict(set)
        user_model = apps.get_model(settings.AUTH_USER_MODEL)
        for entry in timeline:
            if entry.source != "history":
                continue
            if hasattr(entry.record, "role") and getattr(entry.record, "user_id", None):
                wanted[user_model].add(entry.record.user_id)
            model = entry.record.instance_type
            for change in entry.changes:
                try:
                    model_field = model._meta.get_field(change.field)
                except Exception:
                    continue
                if model_field.is_relation and model_field.related_model is not None:
                    for value in (change.old, change.new):
                        if value not in (None, ""):
                            wanted[model_field.related_model].add(value)
        self.objects: dict[tuple[type, str], Any] = {}
        for model, ids in wanted.items():
            for obj in model._base_manager.filter(pk__in=ids):
                self.objects[(model, str(obj.pk))] = obj

    def value(self, model_field, value) -> str:
        """Return a field's stored value as people read it (a person, a name, a date)."""
        if value in (None, ""):
            return "—"
        if model_field is not None and model_field.is_relation:
            obj = self.objects.get((model_field.related_model, str(value)))
            if obj is None:
                return "(removed)"
            if model_field.related_model._meta.label == settings.AUTH_USER_MODEL:
                return person(obj)
            return str(obj)
        if model_field is not None and model_field.choices:
            return str(dict(model_field.flatchoices).get(value, humanize_code(value)))
        if isinstance(value, datetime.datetime):
            return format_datetime(value)
        if isinstance(value, datetime.date):
            return format_date(value)
        if isinstance(value, uuid.UUID):
            return "(another record)"
        text = readable_value(value)
        return "(updated)" if len(text) > LONG_VALUE else text

    def member(self, row: TimelineEntry) -> str:
        """Return the person a team member history row is about."""
        user = self.objects.get((apps.get_model(settings.AUTH_USER_MODEL), str(row.record.user_id)))
        return person(user) if user is not None else "someone"

    def label(self, row: TimelineEntry) -> str:
        """Return a history row's object name (a team member by person and role)."""
        record = row.record
        if hasattr(record, "role") and hasattr(record, "user_id"):
            return f"{self.member(row)} as {record.get_role_display().lower()}"
        return row.object_label

    @staticmethod
    def url(model_name: str, object_id) -> str:
        """Return the admin page of an object by its model name, or ""."""
        if not object_id or not model_name:
            return ""
        for model in apps.get_models():
            if model._meta.model_name == model_name:
                try:
                    return reverse(
                        f"admin:{model._meta.app_label}_{model_name}_change", args=(object_id,)
                    )
                except NoReverseMatch:
                    return ""
        return ""
