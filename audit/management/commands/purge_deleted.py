"""Hard-delete soft-deleted records past the retention period, and the files only they used.

Soft-deleted artefacts, workflow runs, chat sessions and engagements whose deleted_at is
older than --older-than days are deleted for real (an engagement with everything in
it), each in its own transaction, with an audit event per engagement, artefact and
chat session ({"purged": true}); workflow runs are recorded by their history alone,
as when they are soft-deleted (the audit log has no action for them). History rows
always stay: they are the record.

Never purged, whatever their age (see docs/operators/commands.md):

- anything of a completed or archived engagement;
- an approved artefact, an artefact with an approved sign-off, and every version an
  artefact that is kept builds on (the version chain stays whole);
- a workflow run an artefact or an approval still names as its source;
- an engagement holding approved work.

A stored file is removed only once no artefact row (deleted or not) references it:
identical bytes are shared between artefacts.

This command is the engine; what each model's rows need before they go, and what
purging one does, are the rules its app registers (`audit.purge`): the audit app
imports no app above it.
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone
from tqdm import tqdm

from audit.purge import PURGE_RULES, purge_rules
from audit.services import audit_record

NEGATIVE_DAYS = "--older-than must be 0 or more days, not {days}."
KEPT_LINE = "Kept {label} {pk} “{record}”: {reason}"
PURGE_LINE = "{verb} {label} {pk} “{record}” (deleted {deleted_at:%Y-%m-%d})"
FILE_LINE = "{verb} file {name}"
SUMMARY = (
    "{verb} {rows} soft-deleted record(s) deleted before {cutoff:%Y-%m-%d %H:%M} UTC: "
    "{counts}, plus {cascaded} row(s) inside them; {files_verb} {files} "
    "file(s); kept {kept} protected record(s)."
)
COUNT = "{count} {label}(s)"

REASON_PROTECTED = "other records protect it ({error})"


@dataclass
class PurgeTally:
    """What a purge did (or, in a dry run, would do)."""

    purged: dict[str, int] = field(default_factory=dict)
    cascaded: int = 0
    kept: int = 0
    files: int = 0
    # Ids of the rows gone (or, in a dry run, going) in this run, by model label.
    gone: dict[str, set] = field(default_factory=dict)
    # Files freed by the rows gone: name → (storage, still_used()).
    files_freed: dict[str, tuple] = field(default_factory=dict)

    def add(self, other: PurgeTally) -> None:
        """Count in what one committed purge did."""
        for label, count in other.purged.items():
            self.purged[label] = self.purged.get(label, 0) + count
        self.cascaded += other.cascaded
        for label, ids in other.gone.items():
            self.gone.setdefault(label, set()).update(ids)


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
        # Children before parents (the rules' stages): a later version before the one it
        # builds on, artefacts before the runs they name, everything before the engagement.
        due = [(rule, list(self._due(rule))) for rule in purge_rules()]
        progress = tqdm(
            total=sum(len(pks) for _rule, pks in due),
            unit=" records",
            file=sys.stderr,
            disable=no_progress or not sys.stderr.isatty(),
        )
        with progress:
            for rule, pks in due:
                for pk in pks:
                    self._one(rule, pk)
                    progress.update(1)
        self._summary()

    def _due(self, rule):
        """Return the ids of soft-deleted rows of the rule's model past the cutoff."""
        return (
            rule.model.all_objects.filter(is_deleted=True, deleted_at__lt=self.cutoff)
            .order_by(*rule.order_by)
            .values_list("pk", flat=True)
        )

    def _one(self, rule, pk) -> None:
        """Purge one record in its own transaction, unless something still needs it."""
        # What this purge does is counted only once its transaction has committed: a
        # rolled-back purge must not free files or count as done.
        self.pending = PurgeTally()
        try:
            self._purge_one(rule, pk)
        except (ProtectedError, RestrictedError) as protected:
            # A foreign key that protects the row (on_delete PROTECT/RESTRICT) keeps it too.
            self._keep(rule.model, pk, REASON_PROTECTED.format(error=protected.args[0]))
            return
        self.tally.add(self.pending)
        self._remove_files(self.pending.files_freed)

    def _purge_one(self, rule, pk) -> None:
        model = rule.model
        with transaction.atomic():
            rows = model.all_objects.filter(pk=pk, is_deleted=True, deleted_at__lt=self.cutoff)
            record = rows.first() if self.dry_run else rows.select_for_update().first()
            if record is None:
                return  # restored or purged meanwhile
            reason = rule.keep(record, self)
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
            rule.purge(record, self)
            self.pending.purged[str(model._meta.verbose_name)] = 1

    def _keep(self, model, pk, reason: str, *, record=None) -> None:
        self.tally.kept += 1
        line = KEPT_LINE.format(
            label=model._meta.verbose_name, pk=pk, record=record or pk, reason=reason
        )
        self._write(line, level=1)

    # What the rules ask of, and tell, the purge (audit.purge.PurgeRun) ------------------

    def purged_ids(self, model) -> set:
        """Return the ids of `model` rows purged by this run so far (committed)."""
        return self.tally.gone.get(model._meta.label_lower, set())

    def mark_purged(self, record) -> None:
        """Note that `record` is gone (or would be) once the current row commits."""
        self.pending.gone.setdefault(record._meta.label_lower, set()).add(record.pk)

    def count_inside(self, rows: int) -> None:
        """Count rows deleted with the current one."""
        self.pending.cascaded += rows

    def free_file(self, name: str, *, storage, still_used) -> None:
        """Remove the file `name` once the current row has committed, unless still used."""
        self.pending.files_freed[name] = (storage, still_used)

    def record(
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

    def _remove_files(self, freed: dict[str, tuple]) -> None:
        """Remove each freed file that no remaining row references."""
        for name in sorted(freed):
            storage, still_used = freed[name]
            if still_used() or not storage.exists(name):
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
        counts = ", ".join(
            COUNT.format(count=purged.get(str(label), 0), label=label)
            for label in (rule.model._meta.verbose_name for rule in PURGE_RULES.values())
        )
        line = SUMMARY.format(
            verb="Dry run: would purge" if self.dry_run else "Purged",
            rows=sum(purged.values()),
            cutoff=self.cutoff,
            counts=counts,
            cascaded=self.tally.cascaded,
            files_verb="would remove" if self.dry_run else "removed",
            files=self.tally.files,
            kept=self.tally.kept,
        )
        if self.dry_run:
            line += " Nothing was changed."
        self.stdout.write(self.style.SUCCESS(line))
