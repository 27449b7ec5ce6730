from django.apps import AppConfig
from django.db.models import Q


class WorkflowsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "workflows"

    def ready(self):
        from artefacts import hooks as artefact_hooks
        from engagements.hooks import completion_checks
        from records import scoping
        from records.admin import register_page_extension

        from . import selectors
        from .admin import ENGAGEMENT_PAGE

        # What artefacts need to know of runs: their inputs and the validation runs.
        artefact_hooks.run_inputs.register(selectors.engagement_run_input_ids)
        artefact_hooks.validation_runs.register(selectors.validation_runs)
        artefact_hooks.validation_run_problem.register(selectors.validation_run_problem)
        # An engagement completes only once none of its runs is open.
        completion_checks.register(selectors.engagement_require_no_open_runs)
        # The engagement page lists its runs.
        register_page_extension("engagements.Engagement", ENGAGEMENT_PAGE)

        scoping.register_engagement_scope("workflows.WorkflowRun", timeline=scoping.in_engagement)
        scoping.register_engagement_scope(
            "workflows.ReplayRecord",
            rows=lambda engagement_id: Q(run__engagement_id=engagement_id),
        )
        scoping.register_outside_engagements(
            "workflows.WorkerHeartbeat",
            reason="a worker process's liveness, not a record of any engagement",
        )
