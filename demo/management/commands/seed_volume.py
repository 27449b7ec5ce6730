"""Seed a firm's volume of data for benchmarks: engagements, teams, runs, artefacts, audit.

`seed_volume --engagements 10000 --runs 100000 --artefacts 50000 --audit 1000000` is
the volume of issue 18 (artefacts default to half the runs). Seeded artefacts are
records without bytes (no file in storage): what lists and changelists read.
Rows are written in batches with `bulk_create` (no per-row save, no
history rows, no notifications): this is benchmark data, never a real firm's. Each
audit row is numbered and hashed in Python against the locked chain head by the
code every append uses (COPY on PostgreSQL), so `verify_audit_log` passes after
seeding. Every seeded engagement's client code starts with SEED- and every seeded
user's name with seed-, so they are easy to tell apart.

Refuses to run with DEBUG off unless --force (like load_demo: the seeded users have
no usable password, but the data is fake).
"""

from __future__ import annotations

import datetime
import json
import random
import time
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from artefacts.choices import ArtefactStatus, ArtefactType
from artefacts.models import Artefact
from audit.chain import JSON_FIELDS
from audit.choices import AuditAction, Severity
from audit.models import AuditChainHead, AuditLog
from engagements.choices import EngagementStatus, EngagementType, TeamRole
from engagements.models import Engagement, EngagementMember
from workflows.choices import WorkflowStatus, WorkflowType
from workflows.models import WorkflowRun

BATCH = 5000
# Seeded activity spreads over this many days up to now.
SPAN_DAYS = 730
TEAM = (TeamRole.LEAD, TeamRole.ACTUARY, TeamRole.REVIEWER)
RUN_STATUSES = (
    (WorkflowStatus.COMPLETED, 70),
    (WorkflowStatus.FAILED, 10),
    (WorkflowStatus.CANCELLED, 5),
    (WorkflowStatus.WAITING_APPROVAL, 5),
    (WorkflowStatus.PENDING, 10),
)
AGENTS = ("", "", "", "reserving-agent", "ifrs17-agent", "review-agent")
ARTEFACT_KINDS = (
    (ArtefactType.TRIANGLE, "text/csv", "csv"),
    (ArtefactType.MODEL_OUTPUT, "application/json", "json"),
    (ArtefactType.EXCEL, "application/vnd.ms-excel", "xlsx"),
    (ArtefactType.REPORT, "application/pdf", "pdf"),
)
ARTEFACT_STATUSES = (
    [ArtefactStatus.DRAFT] * 4
    + [ArtefactStatus.PENDING_REVIEW] * 2
    + [ArtefactStatus.APPROVED] * 3
    + [ArtefactStatus.SUPERSEDED]
)
AUDIT_ACTIONS = (
    AuditAction.WORKFLOW_CREATE,
    AuditAction.WORKFLOW_START,
    AuditAction.WORKFLOW_COMPLETE,
    AuditAction.WORKFLOW_FAIL,
    AuditAction.WORKFLOW_UPDATE,
)
REFUSED = "seed_volume writes fake data in bulk: run it with DEBUG on, or --force."
DONE = "Seeded {what} in {seconds:.1f} s."


class Command(BaseCommand):
    help = (
        "Seed engagements (teams of 3), workflow runs, artefact records and a valid audit "
        "chain, in bulk."
    )

    def add_arguments(self, parser):
        parser.add_argument("--engagements", type=int, default=1000)
        parser.add_argument("--runs", type=int, default=10000)
        parser.add_argument(
            "--artefacts", type=int, default=None, help="default: half the runs (records only)"
        )
        parser.add_argument("--audit", type=int, default=100000)
        parser.add_argument("--users", type=int, default=None, help="default: engagements / 5")
        parser.add_argument("--seed", type=int, default=18, help="random seed (repeatable data)")
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off")

    def handle(self, *args, engagements, runs, artefacts, audit, users, seed, force, **options):
        if not (settings.DEBUG or force):
            raise CommandError(REFUSED)
        artefacts = runs // 2 if artefacts is None else artefacts
        if min(engagements, runs, artefacts, audit) < 0:
            raise CommandError("Counts must be 0 or more.")
        if runs and not engagements:
            raise CommandError("Runs need engagements: give --engagements.")
        if artefacts and not runs:
            raise CommandError("Artefacts come from runs: give --runs.")
        self.random = random.Random(seed)
        self.now = timezone.now()
        self.tag = uuid.uuid4().hex[:6]
        started = time.perf_counter()
        people = self._users(users if users is not None else max(10, engagements // 5))
        engagement_ids = self._engagements(engagements, people)
        run_ids = self._runs(runs, engagement_ids, people)
        self._artefacts(artefacts, run_ids, people)
        self._audit(audit, engagement_ids, run_ids, people)
        what = (
            f"{len(people)} users, {len(engagement_ids)} engagements, {len(run_ids)} runs, "
            f"{artefacts} artefacts, {audit} audit entries"
        )
        self.stdout.write(DONE.format(what=what, seconds=time.perf_counter() - started))

    def _when(self, fraction: float) -> datetime.datetime:
        """Return the moment `fraction` (0–1) of the way from SPAN_DAYS ago to now."""
        return self.now - datetime.timedelta(days=SPAN_DAYS * (1 - fraction))

    def _users(self, count: int) -> list[int]:
        User = get_user_model()
        users = [
            User(username=f"seed-{self.tag}-{n}", is_staff=True, password="!") for n in range(count)
        ]
        User.objects.bulk_create(users, batch_size=BATCH)
        return list(
            User.objects.filter(username__startswith=f"seed-{self.tag}-").values_list(
                "pk", flat=True
            )
        )

    def _engagements(self, count: int, people: list[int]) -> list[uuid.UUID]:
        ids = []
        types = [choice.value for choice in EngagementType]
        statuses = (
            [EngagementStatus.ACTIVE] * 6
            + [EngagementStatus.DRAFT] * 2
            + [EngagementStatus.COMPLETED] * 2
        )
        for start in range(0, count, BATCH):
            batch, members = [], []
            for n in range(start, min(start + BATCH, count)):
                team = self.random.sample(people, 3)
                engagement = Engagement(
                    client_code=f"SEED-{self.tag}-{n:06d}",
                    client_name=f"Seed client {n}",
                    name=f"FY{2020 + n % 6} review {n}",
                    engagement_type=types[n % len(types)],
                    status=statuses[n % len(statuses)],
                    due_date=(self._when(n / max(count, 1)) + datetime.timedelta(days=90)).date(),
                    lead_actuary_id=team[0],
                    reviewer_id=team[2],
                    created_by_id=team[0],
                    created_at=self._when(n / max(count, 1)),
                )
                batch.append(engagement)
                members += [
                    EngagementMember(engagement=engagement, user_id=user, role=role)
                    for user, role in zip(team, TEAM, strict=True)
                ]
            with transaction.atomic():
                Engagement.objects.bulk_create(batch)
                EngagementMember.objects.bulk_create(members)
            ids += [engagement.pk for engagement in batch]
        return ids

    def _runs(self, count: int, engagements: list[uuid.UUID], people: list[int]) -> list:
        statuses = [status for status, weight in RUN_STATUSES for _ in range(weight)]
        types = [choice.value for choice in WorkflowType]
        ids = []
        for start in range(0, count, BATCH):
            batch = []
            for n in range(start, min(start + BATCH, count)):
                status = self.random.choice(statuses)
                created = self._when(n / max(count, 1))
                ended = status in (
                    WorkflowStatus.COMPLETED,
                    WorkflowStatus.FAILED,
                    WorkflowStatus.CANCELLED,
                )
                actor = self.random.choice(people)
                batch.append(
                    WorkflowRun(
                        engagement_id=self.random.choice(engagements),
                        workflow_type=self.random.choice(types),
                        name=f"Seeded run {n}",
                        status=status,
                        created_at=created,
                        created_by_id=actor,
                        started_at=created if status != WorkflowStatus.PENDING else None,
                        completed_at=created + datetime.timedelta(seconds=4) if ended else None,
                        step_count=4,
                        current_step=4 if status != WorkflowStatus.PENDING else 0,
                        agent_name=self.random.choice(AGENTS),
                        error_message="Seeded failure" if status == WorkflowStatus.FAILED else "",
                    )
                )
            WorkflowRun.objects.bulk_create(batch)
            ids += [(run.pk, run.engagement_id) for run in batch]
        return ids

    def _artefacts(self, count: int, runs: list, people: list[int]) -> None:
        for start in range(0, count, BATCH):
            batch = []
            for n in range(start, min(start + BATCH, count)):
                run_id, engagement_id = self.random.choice(runs)
                kind, mime_type, extension = self.random.choice(ARTEFACT_KINDS)
                batch.append(
                    Artefact(
                        engagement_id=engagement_id,
                        workflow_run_id=run_id,
                        artefact_type=kind,
                        name=f"Seeded {kind} {n}",
                        file_name=f"seeded-{n}.{extension}",
                        mime_type=mime_type,
                        file_size=self.random.randrange(1_000, 5_000_000),
                        content_hash=f"{self.random.getrandbits(256):064x}",
                        status=self.random.choice(ARTEFACT_STATUSES),
                        created_at=self._when(n / max(count, 1)),
                        created_by_id=self.random.choice(people),
                    )
                )
            Artefact.objects.bulk_create(batch)

    def _audit(self, count: int, engagements, runs, people: list[int]) -> None:
        severities = [Severity.INFO] * 17 + [Severity.WARNING, Severity.ERROR, Severity.CRITICAL]
        for start in range(0, count, BATCH):
            batch = []
            for n in range(start, min(start + BATCH, count)):
                action = self.random.choice(AUDIT_ACTIONS)
                if runs:
                    resource_id, engagement_id = self.random.choice(runs)
                    resource_type = "workflowrun"
                elif engagements:
                    resource_id = engagement_id = self.random.choice(engagements)
                    resource_type = "engagement"
                else:
                    resource_id = engagement_id = None
                    resource_type = ""
                batch.append(
                    AuditLog(
                        action=action,
                        severity=self.random.choice(severities),
                        resource_type=resource_type,
                        resource_id=resource_id,
                        engagement_id=engagement_id,
                        user_id=self.random.choice(people) if people else None,
                        description=f"Seeded {action} {n}",
                        new_value={"n": n},
                        created_at=self._when(n / max(count, 1)),
                    )
                )
            _append(batch)


def _append(entries: list[AuditLog]) -> None:
    """Append entries to the chain: numbered and hashed against the locked head.

    On PostgreSQL the rows go in with COPY (the append-only triggers allow it like any
    insert); elsewhere through the AuditLog's own bulk_create. Either way every entry
    is linked by `AuditChainHead.link()`, the code every append uses.
    """
    if connection.vendor != "postgresql":
        AuditLog.objects.bulk_create(entries)
        return
    fields = AuditLog._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    with transaction.atomic(), connection.cursor() as cursor:
        head = AuditChainHead.objects.locked()
        with cursor.cursor.copy(f"COPY audit_auditlog ({columns}) FROM STDIN") as copy:
            for entry in entries:
                head.link(entry)
                copy.write_row(
                    [
                        json.dumps(value)
                        if field.name in JSON_FIELDS and value is not None
                        else value
                        for field, value in ((f, getattr(entry, f.attname)) for f in fields)
                    ]
                )
        head.save()
