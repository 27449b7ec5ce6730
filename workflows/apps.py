from django.apps import AppConfig
from django.db.models import Q


class WorkflowsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "workflows"

    def ready(self):
        from records import scoping

        scoping.register_engagement_scope("workflows.WorkflowRun", timeline=scoping.in_engagement)
        scoping.register_engagement_scope(
            "workflows.ReplayRecord",
            rows=lambda engagement_id: Q(run__engagement_id=engagement_id),
        )
