"""Objects in later states, reached only through the services (never by setting status).

Also `database_state()`, which tests compare before and after a refused call to
show that nothing changed (no row, no history record, no audit event), and
helpers that submit admin pages as a user would.
"""

from django import forms
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.utils import timezone

from approvals.choices import ApprovalType, DisclosureChecklistStatus
from approvals.models import Approval, DisclosureChecklist, ProfessionalQualification, ReviewPoint
from approvals.services import (
    approval_approve,
    approval_request,
    disclosure_checklist_complete,
    disclosure_checklist_prefill,
)
from artefacts.choices import ArtefactType, DataProviderType
from artefacts.models import Artefact, DataReliance
from artefacts.selectors import engagement_input_data_without_reliance
from artefacts.services import artefact_create, reliance_record
from audit.models import AuditLog
from conversations.models import ChatMessage, Session
from engagements.models import Engagement, EngagementMember
from engagements.services import engagement_activate
from workflows.choices import WorkflowType
from workflows.models import ReplayRecord, WorkflowRun
from workflows.services import workflow_run_create, workflow_run_start

from . import TRIANGLE_CSV

TRACKED_MODELS = (
    Engagement,
    EngagementMember,
    WorkflowRun,
    ReplayRecord,
    Artefact,
    DataReliance,
    Approval,
    ReviewPoint,
    DisclosureChecklist,
    ProfessionalQualification,
    Session,
    ChatMessage,
    AuditLog,
)
# What a reviewer states when they decide (the services require a statement).
NO_CONFLICT = "I took no part in this work and have no interest in its outcome."


def database_state() -> dict:
    """Return every domain row, every history count and the audit log, for comparison."""
    state = {}
    for model in TRACKED_MODELS:
        label = model._meta.label
        state[label] = list(model._base_manager.order_by("pk").values())
        history = getattr(model, "history", None)
        if history is not None:
            state[f"{label} history"] = history.count()
    return state


def upload(content: bytes = TRIANGLE_CSV, name: str = "triangle.csv") -> ContentFile:
    """Return an in-memory upload with the given bytes."""
    return ContentFile(content, name=name)


def active_engagement(engagement, *, actor):
    """Return the engagement activated through the service."""
    return engagement_activate(engagement=engagement, actor=actor)


def run_in(engagement, *, actor, start=False, **fields):
    """Return a pending (or, with start=True, running) run created through the services.

    By default a custom run: work done outside the back office, which people start and
    report by hand (a state machine to test). For a run of a type the runner executes
    use `runnable_run_in`.
    """
    fields.setdefault("workflow_type", WorkflowType.CUSTOM)
    fields.setdefault("name", "Chain ladder 2025-Q4")
    fields.setdefault("step_count", 4)
    run = workflow_run_create(engagement=engagement, actor=actor, **fields)
    if start:
        run = workflow_run_start(run=run, actor=actor)
    return run


def runnable_run_in(engagement, *, actor, triangle=None, **fields):
    """Return a pending data validation run on a triangle artefact (uploaded if not given).

    A run of a type the runner executes, with valid input_params, ready to queue.
    """
    if triangle is None:
        triangle = artefact_in(
            engagement, actor=actor, name="Input triangle", artefact_type=ArtefactType.TRIANGLE
        )
    fields.setdefault("workflow_type", WorkflowType.DATA_VALIDATION)
    fields.setdefault("name", "Triangle check 2025-Q4")
    fields.setdefault(
        "input_params",
        {"triangle_artefact": str(triangle.pk), "cumulative": True, "measure": "paid"},
    )
    return workflow_run_create(engagement=engagement, actor=actor, **fields)


def artefact_in(engagement, *, actor, content: bytes = TRIANGLE_CSV, **fields):
    """Return a draft artefact uploaded through the service."""
    fields.setdefault("name", "Paid claims triangle")
    return artefact_create(engagement=engagement, upload=upload(content), actor=actor, **fields)


def record_reliances(engagement, *, actor):
    """Record a (reviewed, client) data reliance entry for each input artefact that has none."""
    return [
        reliance_record(
            artefact=artefact,
            actor=actor,
            provider_type=DataProviderType.CLIENT,
            provider_name=engagement.client_name or "Client",
            data_as_of=engagement.period_end or timezone.localdate(),
            checks_performed="Reconciled to the general ledger.",
            reviewed=True,
        )
        for artefact in engagement_input_data_without_reliance(engagement)
    ]


def completed_checklist(engagement, *, lead=None):
    """Return the engagement's disclosure checklist pre-filled and completed by its lead."""
    lead = lead or engagement.lead_actuary
    checklist = disclosure_checklist_prefill(engagement=engagement, actor=lead)
    if checklist.status == DisclosureChecklistStatus.COMPLETED:
        return checklist
    return disclosure_checklist_complete(checklist=checklist, actor=lead)


def final_sign_off_request(engagement, *, requester):
    """Return a pending final sign-off, its reliances recorded and its checklist completed."""
    record_reliances(engagement, actor=requester)
    completed_checklist(engagement)
    return approval_request(
        approval_type=ApprovalType.FINAL_SIGN_OFF, engagement=engagement, actor=requester
    )


def final_sign_off(engagement, *, requester, approver):
    """Return an approved final sign-off of the engagement, requested and decided via services.

    Records what a final sign-off needs first: a data reliance entry for each input
    artefact and the lead actuary's completed disclosure checklist.
    """
    approval = final_sign_off_request(engagement, requester=requester)
    return approval_approve(
        approval=approval, actor=approver, conflict_of_interest_statement=NO_CONFLICT
    )


def grant(user, *permissions: str):
    """Give `user` permissions ("app_label.codename"); return it re-read (fresh perm cache)."""

    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return type(user).objects.get(pk=user.pk)


def audit_mark() -> set:
    """Return the ids of the audit events written so far."""
    return set(AuditLog.objects.values_list("pk", flat=True))


def audit_events_since(mark: set) -> list:
    """Return the audit events written after `audit_mark()` returned `mark`, oldest first."""
    return list(AuditLog.objects.exclude(pk__in=mark).order_by("created_at", "action"))


# --- admin pages --------------------------------------------------------------------------


def admin_form_data(response) -> dict:
    """Return the POST data that submits an admin add/change page as shown (inlines included)."""
    data = _form_data(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(_form_data(formset.management_form))
        for form in formset.forms:
            data.update(_form_data(form))
    return data


def admin_messages(response) -> list[tuple[str, str]]:
    """Return the (level, text) messages the admin queued for the next page."""
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]


def _form_data(form) -> dict:
    data = {}
    for name, field in form.fields.items():
        bound = form[name]
        value = bound.value()  # already prepared for the widget
        widget = getattr(field.widget, "widget", field.widget)
        if isinstance(widget, forms.MultiWidget):
            for index, part in enumerate(widget.decompress(value)):
                data[f"{bound.html_name}_{index}"] = "" if part is None else part
        elif isinstance(value, bool):
            if value:
                data[bound.html_name] = "on"
        else:
            data[bound.html_name] = "" if value is None else value
    return data
