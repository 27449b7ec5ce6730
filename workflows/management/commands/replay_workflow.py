"""Replay one finished workflow run and report whether its outputs are reproduced.

The run is re-executed on its recorded inputs (checked first: a missing or changed
input refuses the replay), storing nothing; each output's SHA-256 is compared with
the artefact the run stored, and the outcome is recorded as a ReplayRecord and a
workflow_replay audit event, as with the API's POST /workflow-runs/{id}/replay/.
The replay acts as the user given with --user (default: the engagement's lead
actuary), who must work on the engagement.

Exit status: 0 when every output matched; 1 when one did not, the replay was
refused, or the run or user does not exist.
"""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from records.exceptions import DomainError
from workflows.models import WorkflowRun
from workflows.services import workflow_run_replay

NO_SUCH_RUN = "No workflow run with id {run_id}."
NO_SUCH_USER = "No active user named {username!r}."
NO_ACTOR = "Engagement “{engagement}” has no lead actuary: name who replays with --user."
REFUSED = "Cannot replay workflow run “{run}”: {reason}"
OUTPUT_LINE = "  {mark} {name} ({file_name}): original {original}, replay {replay}"
DIFFERENCE_LINE = "  {what}: {original} at the run, {replay} now"
MATCHED = "Replay of workflow run “{run}” matched: every output is reproduced byte for byte."
MISMATCHED = "Replay of workflow run “{run}” did not match: {problem}"


class Command(BaseCommand):
    help = (
        "Replay a finished workflow run on its recorded inputs and compare the outputs' "
        "SHA-256 with the stored artefacts; exit 1 unless every output matches."
    )

    def add_arguments(self, parser):
        """Declare the run id and --user."""
        parser.add_argument("run_id", help="The id (UUID) of the workflow run.")
        parser.add_argument(
            "--user",
            metavar="USERNAME",
            help="Who replays (recorded); default: the engagement's lead actuary.",
        )

    def handle(self, *args, run_id, user=None, **options):
        """Replay the run, print the comparison, exit 1 on a mismatch."""
        run = self._run(run_id)
        actor = self._actor(run, user)
        try:
            record = workflow_run_replay(run=run, actor=actor)
        except DomainError as refusal:
            raise CommandError(REFUSED.format(run=run, reason=refusal.message)) from None
        for output in record.outputs:
            self.stdout.write(
                OUTPUT_LINE.format(
                    mark="✓" if output["match"] else "✗",
                    name=output["name"],
                    file_name=output["file_name"],
                    original=(output["original_hash"] or "none")[:12],
                    replay=(output["replay_hash"] or "none")[:12],
                )
            )
        differences = record.environment.get("differences") or {}
        if differences:
            self.stdout.write("Environment differences:")
            for what, values in differences.items():
                self.stdout.write(DIFFERENCE_LINE.format(what=what, **values))
        if not record.matched:
            problem = record.error_message or "see the outputs marked ✗ above"
            raise CommandError(MISMATCHED.format(run=run, problem=problem))
        self.stdout.write(self.style.SUCCESS(MATCHED.format(run=run)))

    def _run(self, run_id: str) -> WorkflowRun:
        try:
            run = WorkflowRun.objects.select_related("engagement").filter(pk=uuid.UUID(run_id))
            run = run.first()
        except ValueError:
            run = None
        if run is None:
            raise CommandError(NO_SUCH_RUN.format(run_id=run_id))
        return run

    def _actor(self, run: WorkflowRun, username: str | None):
        if username is None:
            if run.engagement.lead_actuary is None:
                raise CommandError(NO_ACTOR.format(engagement=run.engagement))
            return run.engagement.lead_actuary
        actor = get_user_model().objects.filter(username=username, is_active=True).first()
        if actor is None:
            raise CommandError(NO_SUCH_USER.format(username=username))
        return actor
