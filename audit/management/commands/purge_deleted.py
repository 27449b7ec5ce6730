"""Hard-delete soft-deleted records past the retention period, and the files only they used.

Soft-deleted artefacts, workflow runs, chat sessions and engagements whose deleted_at is
older than --older-than days are deleted for real (an engagement with everything in
it), each in its own transaction, with an audit event per engagement, artefact and
chat session ({"purged": true}); workflow runs are recorded by their history alone,
as when they are soft-deleted (the audit log has no action for them). History rows
always stay: they are the record.

Never purged, whatever their age (see README, section "Maintenance commands"):

- anything of a completed or archived engagement;
- an approved artefact, an artefact with an approved sign-off, and every version an
  artefact that is kept builds on (the version chain stays whole);
- a workflow run an artefact or an approval still names as its source;
- an engagement holding approved work.

A stored file is removed only once no artefact row (deleted or not) references it:
identical bytes are shared between artefacts.
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import ProtectedError, Q, RestrictedError
from django.utils import timezone
from tqdm import tqdm

from approvals.choices import ApprovalStatus
from approvals.models import Approval
from artefacts.choices import ArtefactStatus
from artefacts.files import artefact_storage
from artefacts.models import Artefact
from audit.choices import AuditAction
from audit.services import audit_record
from conversations.models import Session
from engagements.choices import CLOSED_STATUSES
from engagements.models import Engagement
from records.services import snapshot
from workflows.models import WorkflowRun

NEGATIVE_DAYS = "--older-than must be 0 or more days, not {days}."
KEPT_LINE = "Kept {label} {pk} “{record}”: {reason}"
PURGE_LINE = "{verb} {label} {pk} “{record}” (deleted {deleted_at:%Y-%m-%d})"
FILE_LINE = "{verb} file {name}"
SUMMARY = (
    "{verb} {rows} soft-deleted record(s) deleted before {cutoff:%Y-%m-%d %H:%M} UTC: "
    "{engagements} engagement(s), {runs} workflow run(s), {artefacts} artefact(s), "
    "{sessions} chat session(s), plus {cascaded} row(s) inside them; {files_verb} {files} "
    "file(s); kept {kept} protected record(s)."
)

REASON_CLOSED_ENGAGEMENT = "its engagement is {status}"
REASON_ENGAGEMENT_CLOSED = "it is {status}"
REASON_APPROVED = "it is approved"
REASON_SIGNED_OFF = "it carries an approved sign-off"
REASON_BUILT_ON = "version {version} ({artefact_id}) builds on it"
REASON_RUN_SOURCE = "{count} artefact(s) or approval(s) name it as their source"
REASON_APPROVED_WORK = "it holds approved work (an approved artefact or sign-off)"
REASON_PROTECTED = "other records protect it ({error})"


@dataclass
class PurgeTally:
    """What a purge did (or, in a dry run, would do)."""

    purged: dict[str, int] = field(default_factory=dict)
    cascaded: int = 0
    kept: int = 0
    files: int = 0
    # Ids of artefacts gone (or, in a dry run, going) in this run.
    artefacts_gone: set = field(default_factory=set)
    files_freed: set = field(default_factory=set)

    def add(self, other: PurgeTally) -> None:
        """Count in what one committed purge did."""
        for label, count in other.purged.items():
            self.purged[label] = self.purged.get(label, 0) + count
        self.cascaded += other.cascaded
        self.artefacts_gone |= other.artefacts_gone


class Command(BaseCommand):
    help = (
        "Hard-delete soft-deleted engagements, workflow runs, artefacts and chat sessions "
        "deleted more than --older-than days ago, and the files only they used; never "
        "anything approved work or a completed engagement still needs."
    )

    def add_arguments(self, parser):
        """Declare --older-than, --dry-run and --no-progress."""
        parser.add_argument(
            "--older-than",
            type=int,
            required=True,
            metavar="DAYS",
            help="Purge only records soft-deleted more than DAYS days ago.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be purged; change nothing."
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, older_than, dry_run, no_progress, verbosity, **options):
        """Purge every eligible record, oldest kinds of dependency first, and summarise."""
        if older_than < 0:
            raise CommandError(NEGATIVE_DAYS.format(days=older_than))
        self.verbosity = verbosity
        self.dry_run = dry_run
        self.older_than = older_than
        self.cutoff = timezone.now() - datetime.timedelta(days=older_than)
        self.tally = PurgeTally()
        # Children before parents: a later version before the one it builds on, artefacts
        # before the runs they name, everything before the engagement that holds it.
        plan = (
            (Artefact, self._artefact_kept, self._purge_artefact, ("-version", "pk")),
            (WorkflowRun, self._run_kept, self._purge_run, ("pk",)),
            (Session, self._session_kept, self._purge_session, ("pk",)),
            (Engagement, self._engagement_kept, self._purge_engagement, ("pk",)),
        )
        due = [
            (model, kept, purge, list(self._due(model, order)))
            for model, kept, purge, order in plan
        ]
        progress = tqdm(
            total=sum(len(pks) for *_rest, pks in due),
            unit=" records",
            file=sys.stderr,
            disable=no_progress or not sys.stderr.isatty(),
        )
        with progress:
            for model, kept, purge, pks in due:
                for pk in pks:
                    self._one(model, pk, kept, purge)
                    progress.update(1)
        self._summary()

    def _due(self, model, order):
        """Return the ids of soft-deleted rows of `model` past the cutoff."""
        return (
            model.all_objects.filter(is_deleted=True, deleted_at__lt=self.cutoff)
            .order_by(*order)
            .values_list("pk", flat=True)
        )

    def _one(self, model, pk, kept, purge) -> None:
        """Purge one record in its own transaction, unless something still needs it."""
        # What this purge does is counted only once its transaction has committed: a
        # rolled-back purge must not free files or count as done.
        self.pending = PurgeTally()
        try:
            self._purge_one(model, pk, kept, purge)
        except (ProtectedError, RestrictedError) as protected:
            # A foreign key that protects the row (on_delete PROTECT/RESTRICT) keeps it too.
            self._keep(model, pk, REASON_PROTECTED.format(error=protected.args[0]))
            return
        self.tally.add(self.pending)
        self._remove_files(self.pending.files_freed)

    def _purge_one(self, model, pk, kept, purge) -> None:
        with transaction.atomic():
            rows = model.all_objects.filter(pk=pk, is_deleted=True, deleted_at__lt=self.cutoff)
            record = rows.first() if self.dry_run else rows.select_for_update().first()
            if record is None:
                return  # restored or purged meanwhile
            reason = kept(record)
            if reason:
                self._keep(model, pk, reason, record=record)
                return
            self._write(
                PURGE_LINE.format(
                    verb="Would purge" if self.dry_run else "Purged",
                    label=model._meta.verbose_name,
                    pk=pk,
                    record=record,
                    deleted_at=record.deleted_at,
                ),
                level=1 if self.dry_run else 2,
            )
            purge(record)
            self.pending.purged[str(model._meta.verbose_name)] = 1

    def _keep(self, model, pk, reason: str, *, record=None) -> None:
        self.tally.kept += 1
        line = KEPT_LINE.format(
            label=model._meta.verbose_name, pk=pk, record=record or pk, reason=reason
        )
        self._write(line, level=1)

    # What is kept --------------------------------------------------------------------------

    def _closed(self, engagement: Engagement) -> str:
        if engagement.status in CLOSED_STATUSES:
            return REASON_CLOSED_ENGAGEMENT.format(status=engagement.status)
        return ""

    def _artefact_kept(self, artefact: Artefact) -> str:
        if reason := self._closed(artefact.engagement):
            return reason
        if artefact.status == ArtefactStatus.APPROVED:
            return REASON_APPROVED
        if artefact.approvals.filter(status=ApprovalStatus.APPROVED).exists():
            return REASON_SIGNED_OFF
        # Any later version that stays (approved or not) keeps the whole chain below it.
        successor = (
            Artefact.all_objects.filter(previous_version=artefact)
            .exclude(pk__in=self.tally.artefacts_gone)
            .first()
        )
        if successor is not None:
            return REASON_BUILT_ON.format(version=successor.version, artefact_id=successor.pk)
        return ""

    def _run_kept(self, run: WorkflowRun) -> str:
        if reason := self._closed(run.engagement):
            return reason
        count = (
            Artefact.all_objects.filter(workflow_run=run)
            .exclude(pk__in=self.tally.artefacts_gone)
            .count()
            + Approval.objects.filter(workflow_run=run)
            .exclude(artefact_id__in=self.tally.artefacts_gone)
            .count()
        )
        return REASON_RUN_SOURCE.format(count=count) if count else ""

    def _session_kept(self, session: Session) -> str:
        if session.engagement is not None:
            return self._closed(session.engagement)
        return ""

    def _engagement_kept(self, engagement: Engagement) -> str:
        if engagement.status in CLOSED_STATUSES:
            return REASON_ENGAGEMENT_CLOSED.format(status=engagement.status)
        approved_artefacts = Artefact.all_objects.filter(
            engagement=engagement, status=ArtefactStatus.APPROVED
        )
        sign_offs = Approval.objects.filter(
            Q(engagement=engagement) | Q(artefact__engagement=engagement),
            status=ApprovalStatus.APPROVED,
        )
        if approved_artefacts.exists() or sign_offs.exists():
            return REASON_APPROVED_WORK
        return ""

    # Purging ------------------------------------------------------------------------------

    def _purge_artefact(self, artefact: Artefact, *, cascade_of=None) -> None:
        self.pending.artefacts_gone.add(artefact.pk)
        if artefact.file:
            self.pending.files_freed.add(artefact.file.name)
        if self.dry_run:
            return
        before, pk = snapshot(artefact), artefact.pk
        if cascade_of is None:
            artefact.delete()
        self._record(
            AuditAction.ARTEFACT_DELETE,
            artefact,
            pk,
            f"Artefact purged: {artefact}",
            before,
            engagement_id=artefact.engagement_id,
            cascade_of=cascade_of,
        )

    def _purge_run(self, run: WorkflowRun) -> None:
        if not self.dry_run:
            # The history's deletion record is the run's trail (see workflow_run_delete).
            run.delete()

    def _purge_session(self, session: Session) -> None:
        self.pending.cascaded += session.messages.count()
        if self.dry_run:
            return
        before, pk = snapshot(session), session.pk
        session.delete()
        self._record(
            AuditAction.SESSION_DELETE,
            session,
            pk,
            f"Chat session purged: {session}",
            before,
            engagement_id=session.engagement_id,
        )

    def _purge_engagement(self, engagement: Engagement) -> None:
        artefacts = list(Artefact.all_objects.filter(engagement=engagement).order_by("pk"))
        contents = {
            "team_members": engagement.team.count(),
            "workflow_runs": WorkflowRun.all_objects.filter(engagement=engagement).count(),
            "artefacts": len(artefacts),
            "approvals": Approval.objects.filter(
                Q(engagement=engagement) | Q(artefact__engagement=engagement)
            ).count(),
        }
        self.pending.cascaded += sum(contents.values())
        before, pk = snapshot(engagement), engagement.pk
        if not self.dry_run:
            engagement.delete()
        for artefact in artefacts:
            self._purge_artefact(artefact, cascade_of=engagement)
        if not self.dry_run:
            self._record(
                AuditAction.ENGAGEMENT_DELETE,
                engagement,
                pk,
                f"Engagement purged with everything in it: {engagement}",
                before,
                engagement_id=pk,
                contents=contents,
            )

    def _record(
        self, action, record, pk, description, before, *, engagement_id, cascade_of=None, **metadata
    ) -> None:
        """Record the purge of one row (the last write of its transaction).

        The id is passed in: Django clears an instance's pk once it is deleted.
        """
        if cascade_of is not None:
            metadata["cascade_of_engagement"] = str(engagement_id)
        audit_record(
            action=action,
            resource_type=record._meta.model_name,
            resource_id=pk,
            engagement_id=engagement_id,
            description=description,
            old_value=before,
            metadata={
                "purged": True,
                "deleted_at": record.deleted_at,
                "older_than_days": self.older_than,
                **metadata,
            },
        )

    def _remove_files(self, names: set[str]) -> None:
        """Remove each freed file that no remaining artefact row references."""
        storage = artefact_storage()
        for name in sorted(names):
            still_used = (
                Artefact.all_objects.filter(file=name)
                .exclude(pk__in=self.tally.artefacts_gone)
                .exists()
            )
            if still_used or not storage.exists(name):
                continue
            self.tally.files += 1
            self._write(
                FILE_LINE.format(verb="Would remove" if self.dry_run else "Removed", name=name),
                level=1 if self.dry_run else 2,
            )
            if not self.dry_run:
                storage.delete(name)

    # Output -------------------------------------------------------------------------------

    def _write(self, line: str, *, level: int) -> None:
        if self.verbosity >= level:
            with tqdm.external_write_mode(file=sys.stderr):
                self.stdout.write(line)

    def _summary(self) -> None:
        purged = self.tally.purged
        line = SUMMARY.format(
            verb="Dry run: would purge" if self.dry_run else "Purged",
            rows=sum(purged.values()),
            cutoff=self.cutoff,
            engagements=purged.get(str(Engagement._meta.verbose_name), 0),
            runs=purged.get(str(WorkflowRun._meta.verbose_name), 0),
            artefacts=purged.get(str(Artefact._meta.verbose_name), 0),
            sessions=purged.get(str(Session._meta.verbose_name), 0),
            cascaded=self.tally.cascaded,
            files_verb="would remove" if self.dry_run else "removed",
            files=self.tally.files,
            kept=self.tally.kept,
        )
        if self.dry_run:
            line += " Nothing was changed."
        self.stdout.write(self.style.SUCCESS(line))
