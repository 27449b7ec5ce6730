"""Audited writes under concurrent load (issue 22): no deadlock, one valid chain.

Many threads, each with its own database connection, do the mixed audited writes
of a working day on a few shared engagements at once: engagement edits, chat
sessions, uploads, approval requests and decisions, run progress and team changes,
logins. Before the chain head was taken last, PostgreSQL answered "deadlock
detected" to most of them. These tests commit for real (`transactional_db`).
"""

from __future__ import annotations

import io
import random
import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_request
from artefacts.choices import ArtefactType
from artefacts.services import artefact_create
from audit.choices import AuditAction
from audit.models import AuditLog
from audit.services import audit_record
from conversations.services import chat_message_add, session_create
from engagements.choices import TeamRole
from engagements.models import Engagement
from engagements.services import engagement_activate, engagement_member_add, engagement_update
from records.services import lock
from records.transactions import RETRIED, audited_transaction
from tests.factories import (
    EngagementFactory,
    EngagementMemberFactory,
    ProfessionalQualificationFactory,
    UserFactory,
)
from tests.factories.states import NO_CONFLICT, run_in, upload
from workflows.choices import WorkflowStatus, WorkflowType
from workflows.models import WorkflowRun
from workflows.reserving import sample_triangle_csv
from workflows.services import (
    workflow_run_create,
    workflow_run_queue,
    workflow_run_update_progress,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ENGAGEMENTS = 3
PEOPLE_PER_ENGAGEMENT = 4
OPERATIONS_PER_PERSON = 15
GENINS = sample_triangle_csv("genins")


class Team:
    """One shared engagement: its lead, its reviewer and the actuaries working on it."""

    def __init__(self, number: int):
        self.lead = UserFactory(username=f"lead{number}", is_staff=True)
        self.lead.set_password("pw")
        self.lead.save()
        self.reviewer = UserFactory(username=f"reviewer{number}", is_staff=True)
        ProfessionalQualificationFactory(user=self.reviewer)
        self.engagement = EngagementFactory(
            lead_actuary=self.lead, reviewer=self.reviewer, created_by=self.lead
        )
        EngagementMemberFactory(engagement=self.engagement, user=self.lead, role=TeamRole.LEAD)
        EngagementMemberFactory(
            engagement=self.engagement, user=self.reviewer, role=TeamRole.REVIEWER
        )
        self.actuaries = []
        for index in range(PEOPLE_PER_ENGAGEMENT - 2):
            user = UserFactory(username=f"actuary{number}-{index}", is_staff=True)
            EngagementMemberFactory(engagement=self.engagement, user=user, role=TeamRole.ACTUARY)
            self.actuaries.append(user)
        self.engagement = engagement_activate(engagement=self.engagement, actor=self.lead)
        self.runs = [
            run_in(self.engagement, actor=self.lead, start=True, name=f"Run {n}", step_count=100)
            for n in range(2)
        ]
        self.triangle = artefact_create(
            engagement=self.engagement,
            upload=upload(GENINS, name="genins.csv"),
            actor=self.lead,
            name="GenIns",
            artefact_type=ArtefactType.TRIANGLE,
        )

    @property
    def people(self):
        return [self.lead, self.reviewer, *self.actuaries]


def _fresh(engagement):
    return Engagement.objects.get(pk=engagement.pk)


def _operations(team: Team, person, rng: random.Random):
    """Return the audited writes `person` may do on the team's engagement, by name."""

    def edit():
        engagement_update(
            engagement=_fresh(team.engagement),
            actor=team.lead,
            data={"description": f"edited by {person} {rng.random()}"},
        )

    def chat():
        session = session_create(actor=person, engagement=_fresh(team.engagement), title="Q")
        chat_message_add(session=session, actor=person, role="user", content="Is the tail ok?")

    def upload_and_review():
        artefact = artefact_create(
            engagement=_fresh(team.engagement),
            upload=upload(),
            actor=team.lead,
            name=f"Triangle {rng.random()}",
        )
        approval = approval_request(
            approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=artefact, actor=team.lead
        )
        approval_approve(
            approval=approval,
            actor=team.reviewer,
            notes="ok",
            conflict_of_interest_statement=NO_CONFLICT,
        )

    def progress():
        run = rng.choice(team.runs)
        workflow_run_update_progress(
            run=run, actor=team.lead, current_step=rng.randrange(1, 100), metrics={"p": 1}
        )

    def login():
        assert Client().login(username=team.lead.username, password="pw")

    def team_change():
        newcomer = UserFactory(is_staff=True)
        engagement_member_add(
            engagement=_fresh(team.engagement), user=newcomer, role="observer", actor=team.lead
        )

    def reserving_run():
        """Queue a chain ladder; the (immediate) task backend runs it in this thread."""
        run = workflow_run_create(
            engagement=_fresh(team.engagement),
            actor=team.lead,
            workflow_type=WorkflowType.RESERVE_CALCULATION,
            name=f"Chain ladder {rng.random()}",
            input_params={
                "triangle_artefact": str(team.triangle.pk),
                "cumulative": True,
                "measure": "paid",
            },
        )
        workflow_run_queue(run=run, actor=team.lead)
        run.refresh_from_db()
        assert run.status == WorkflowStatus.WAITING_APPROVAL, run.error_message

    return {
        "edit": edit,
        "chat": chat,
        "upload_and_review": upload_and_review,
        "progress": progress,
        "login": login,
        "team_change": team_change,
        "reserving_run": reserving_run,
    }


def _run_load(teams: list[Team], *, verifier=None) -> tuple[Counter, list[BaseException]]:
    workers = [(team, person) for team in teams for person in team.people]
    barrier = threading.Barrier(len(workers) + (verifier is not None))
    done, errors = Counter(), []
    lock = threading.Lock()

    def work(number, team, person):
        rng = random.Random(number)
        operations = _operations(team, person, rng)
        try:
            barrier.wait()
            for _ in range(OPERATIONS_PER_PERSON):
                name = rng.choice(sorted(operations))
                try:
                    operations[name]()
                except Exception as error:
                    with lock:
                        errors.append(error)
                else:
                    with lock:
                        done[name] += 1
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(number, team, person))
        for number, (team, person) in enumerate(workers)
    ]
    writers = list(threads)
    if verifier is not None:

        def verify_meanwhile():
            try:
                barrier.wait()
                while any(thread.is_alive() for thread in writers):
                    verifier()
            except Exception as error:
                with lock:
                    errors.append(error)
            finally:
                connection.close()

        threads.append(threading.Thread(target=verify_meanwhile))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done, errors


def test_mixed_audited_writes_on_shared_engagements_never_deadlock(transactional_db, caplog):
    teams = [Team(number) for number in range(ENGAGEMENTS)]
    before = AuditLog.objects.count()
    reports = []

    def verify():
        out = io.StringIO()
        call_command("verify_audit_log", "--no-progress", stdout=out)
        reports.append(out.getvalue())

    done, errors = _run_load(teams, verifier=verify)

    assert errors == [], f"{len(errors)} failed: {errors[:3]!r}"
    assert sum(done.values()) == ENGAGEMENTS * PEOPLE_PER_ENGAGEMENT * OPERATIONS_PER_PERSON
    assert set(done) == {
        "edit",
        "chat",
        "upload_and_review",
        "progress",
        "login",
        "team_change",
        "reserving_run",
    }
    assert not WorkflowRun.objects.filter(status=WorkflowStatus.FAILED).exists()
    assert AuditLog.objects.count() > before
    # verify_audit_log ran again and again while the writers wrote: never a false alarm.
    assert reports and all("Audit log intact" in report for report in reports)
    verify()
    assert "Audit log intact" in reports[-1]
    assert "appended while checking" not in reports[-1]


OTHER = {"forward": "backward", "backward": "forward"}


def test_two_transactions_that_deadlock_are_retried_once_with_the_same_result(
    transactional_db, caplog
):
    """Opposite lock orders on two engagements: PostgreSQL aborts one; it runs again."""
    first, second = EngagementFactory(), EngagementFactory()
    both_locked_one = threading.Barrier(2)
    attempts = Counter()
    finished = {"forward": threading.Event(), "backward": threading.Event()}

    @audited_transaction
    def lock_both(name, one, other):
        attempts[name] += 1
        if attempts[name] > 1:
            # The retry starts once the other has committed, as it would at any pace: a
            # retry racing the survivor for the same rows could deadlock it again.
            finished[OTHER[name]].wait(timeout=10)
        lock(one)
        audit_record(action=AuditAction.ENGAGEMENT_UPDATE, resource=one, description=name)
        if attempts[name] == 1:
            both_locked_one.wait(timeout=10)
        lock(other)
        audit_record(action=AuditAction.ENGAGEMENT_UPDATE, resource=other, description=name)

    errors = []

    def run(name, one, other):
        try:
            lock_both(name, one, other)
            finished[name].set()
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=("forward", first, second)),
        threading.Thread(target=run, args=("backward", second, first)),
    ]
    with caplog.at_level("WARNING", logger="records.transactions"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert sorted(attempts.values()) == [1, 2]
    retried = [r.getMessage() for r in caplog.records if r.name == "records.transactions"]
    assert len(retried) == 1 and retried[0].startswith(RETRIED.split("%s")[0])
    # Each ran once to the end: two events each, the aborted attempt left none.
    events = Counter(AuditLog.objects.values_list("description", flat=True))
    assert events == {"forward": 2, "backward": 2}
    call_command("verify_audit_log", "--no-progress", stdout=io.StringIO())


def test_the_chain_head_is_not_held_while_a_transaction_is_still_working(transactional_db):
    """An event recorded mid-transaction does not block others; chain order is commit order."""
    recorded, other_committed = threading.Event(), threading.Event()
    errors = []

    def slow_writer():
        try:
            with audited_transaction():
                audit_record(
                    action=AuditAction.DATA_EXPORT, resource_type="report", description="slow"
                )
                recorded.set()
                # Before the change this waited forever: the head was locked here.
                assert other_committed.wait(timeout=10), "the other writer was blocked"
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    def quick_writer():
        try:
            recorded.wait(timeout=10)
            audit_record(
                action=AuditAction.DATA_EXPORT, resource_type="report", description="quick"
            )
            other_committed.set()
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=slow_writer), threading.Thread(target=quick_writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    chain = list(AuditLog.objects.order_by("sequence").values_list("description", flat=True))
    assert chain == ["quick", "slow"]
