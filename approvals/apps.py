from django.apps import AppConfig
from django.db.models import Q
from django.db.models.signals import post_migrate

# The Certifiers group's permissions: find people, see and certify qualifications.
CERTIFIER_PERMISSIONS = (
    ("auth", "view_user"),
    ("approvals", "view_professionalqualification"),
    ("approvals", "add_professionalqualification"),
    ("approvals", "change_professionalqualification"),
    ("approvals", "certify_professionalqualification"),
)


def ensure_certifiers_group(using="default", **kwargs) -> None:
    """Create the Certifiers group with its permissions if missing (after every migrate).

    Certifying qualifications is a role apart from the actuaries' (whose sign-offs
    depend on them), so every installation has the group; who belongs to it is the
    firm's decision. Existing members and extra permissions are left alone.
    """
    from django.contrib.auth.models import Group, Permission

    from .services import CERTIFIERS_GROUP

    wanted = Q()
    for app_label, codename in CERTIFIER_PERMISSIONS:
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    permissions = list(Permission.objects.using(using).filter(wanted))
    if len(permissions) < len(CERTIFIER_PERMISSIONS):
        return  # the permissions are created by an earlier post_migrate receiver; next time
    group, _ = Group.objects.using(using).get_or_create(name=CERTIFIERS_GROUP)
    group.permissions.add(*permissions)


class ApprovalsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "approvals"

    def ready(self):
        from artefacts.hooks import artefact_change_guards
        from audit.purge import register_purge_rule
        from engagements.hooks import completion_checks
        from records import scoping
        from records.admin import register_page_extension
        from workflows.hooks import run_awaiting_approval

        from . import purge
        from .admin import ARTEFACT_PAGE, ENGAGEMENT_PAGE
        from .selectors import approval_timeline_rows, engagement_require_final_sign_off
        from .services import artefact_require_no_pending_approval, workflow_approval_request

        post_migrate.connect(
            ensure_certifiers_group, sender=self, dispatch_uid="approvals.certifiers_group"
        )
        # A run the runner finished waits for its sign-off: request the workflow approval.
        run_awaiting_approval.register(workflow_approval_request)
        # An artefact under a pending review is not replaced, archived or deleted.
        artefact_change_guards.register(artefact_require_no_pending_approval)
        # An engagement completes only once its final sign-off is approved.
        completion_checks.register(engagement_require_final_sign_off)
        # The artefact page offers to request its review.
        register_page_extension("artefacts.Artefact", ARTEFACT_PAGE)
        # The engagement page lists its approvals and its final sign-off.
        register_page_extension("engagements.Engagement", ENGAGEMENT_PAGE)
        scoping.register_engagement_scope(
            "approvals.Approval",
            rows=lambda engagement_id: (
                Q(engagement_id=engagement_id)
                | Q(artefact__engagement_id=engagement_id)
                | Q(workflow_run__engagement_id=engagement_id)
            ),
            timeline=approval_timeline_rows,
        )
        scoping.register_engagement_scope(
            "approvals.ReviewPoint",
            rows=lambda engagement_id: (
                Q(approval__engagement_id=engagement_id)
                | Q(approval__artefact__engagement_id=engagement_id)
            ),
        )
        scoping.register_engagement_scope("approvals.DisclosureChecklist")
        scoping.register_outside_engagements(
            "approvals.ProfessionalQualification",
            reason="belongs to a person, not an engagement; approvals keep a snapshot of it",
        )
        # What keeps a deleted engagement, run or artefact from the purge: approved work.
        register_purge_rule(
            "engagements.Engagement",
            stage=purge.ENGAGEMENT_STAGE,
            keep=purge.engagement_kept,
            purge=purge.engagement_purge,
        )
        register_purge_rule(
            "workflows.WorkflowRun",
            stage=purge.RUN_STAGE,
            keep=purge.run_kept,
            purge=purge.run_purge,
        )
        register_purge_rule(
            "artefacts.Artefact",
            stage=purge.ARTEFACT_STAGE,
            keep=purge.artefact_kept,
            purge=purge.artefact_purge,
            # A later version goes before the one it builds on.
            order_by=("-version", "pk"),
        )
