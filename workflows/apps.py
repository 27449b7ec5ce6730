from django.apps import AppConfig
from django.db.models import Q


class WorkflowsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "workflows"

    def ready(self):
        from artefacts import hooks as artefact_hooks
        from records import scoping

        from . import selectors

        # What artefacts need to know of runs: their inputs and the validation runs.
        artefact_hooks.run_inputs.register(selectors.engagement_run_input_ids)
        artefact_hooks.validation_runs.register(selectors.validation_runs)
        artefact_hooks.validation_run_problem.register(selectors.validation_run_problem)

        scoping.register_engagement_scope("workflows.WorkflowRun", timeline=scoping.in_engagement)
        scoping.register_engagement_scope(
            "workflows.ReplayRecord",
            rows=lambda engagement_id: Q(run__engagement_id=engagement_id),
        )
