from django.apps import AppConfig
from django.db.models import Q


class EngagementsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "engagements"

    def ready(self):
        from records import scoping

        from . import selectors

        # Who sees which engagement: the lower layers (API and admin bases, the audit
        # trail) apply this app's rule through records.scoping.
        scoping.engagement_access.register(selectors)
        scoping.register_engagement_scope(
            "engagements.Engagement",
            rows=lambda engagement_id: Q(pk=engagement_id),
            history=lambda engagement_id: Q(id=engagement_id),
            timeline=lambda engagement_id: Q(id=engagement_id),
            choices=lambda queryset, user: selectors.scope_to_user(
                queryset, user, engagement_path=""
            ),
        )
        scoping.register_engagement_scope(
            "engagements.EngagementMember", timeline=scoping.in_engagement
        )
