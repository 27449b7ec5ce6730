"""What approvals add to the pages of the apps below (registered in ApprovalsConfig.ready()).

- the artefact page: a button to request its review or sign-off, with a form offering
  the artefact's team;
- the engagement page: its approvals, and the final sign-off section (the disclosure
  checklist to pre-fill and complete, what a request still needs, the requests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model
from django.urls import reverse

from artefacts.admin import reliance_rows as artefact_reliance_rows
from artefacts.choices import REVIEWABLE_STATUSES
from engagements.choices import CLOSED_STATUSES
from engagements.selectors import WORKING_ROLES
from records.admin import (
    AdminMove,
    PageExtension,
    ReadOnlyInline,
    SectionButton,
)
from records.formatting import format_datetime, person

from ..choices import (
    SIGN_OFF_TYPES,
    ApprovalType,
    DisclosureChecklistStatus,
)
from ..models import Approval, DisclosureChecklist
from ..services import (
    approval_request,
    disclosure_checklist_prefill,
)

# What may be asked of one artefact: a workflow approval belongs to its run (the runner
# asks for it) and a final sign-off to the whole engagement.
ARTEFACT_APPROVAL_TYPES = tuple(
    approval_type
    for approval_type in ApprovalType
    if approval_type not in (ApprovalType.WORKFLOW_APPROVAL, ApprovalType.FINAL_SIGN_OFF)
)
SIGN_OFF_LABEL = "{label} (needs a qualified approver)"
DESIGNATED_APPROVER_HELP = (
    "Only this person may decide. Empty: anyone on the team who is independent of the "
    "work may (qualified, for a sign-off)."
)
EXPIRES_AT_HELP = "Empty: no expiry. After it, the request can no longer be decided."
APPROVER_LABEL = "{name} ({username}) — {role}"
DATETIME_INPUT_FORMAT = "%Y-%m-%dT%H:%M"


class ApprovalRequestForm(forms.Form):
    """What an approval request on an artefact asks: which review, of whom, until when."""

    approval_type = forms.ChoiceField(
        choices=tuple(
            (
                approval_type.value,
                SIGN_OFF_LABEL.format(label=approval_type.label)
                if approval_type in SIGN_OFF_TYPES
                else approval_type.label,
            )
            for approval_type in ARTEFACT_APPROVAL_TYPES
        )
    )
    designated_approver = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        help_text=DESIGNATED_APPROVER_HELP,
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at",
        input_formats=(DATETIME_INPUT_FORMAT,),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_INPUT_FORMAT),
        help_text=EXPIRES_AT_HELP,
    )
    request_notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, label="Notes"
    )

    # Set per artefact and user (`for_artefact`): who may be designated.
    approvers = get_user_model().objects.none()
    roles: dict = {}

    @classmethod
    def for_artefact(cls, artefact, user) -> type[ApprovalRequestForm]:
        """Return the form offering the artefact's team (working roles), requester excluded."""
        members = artefact.engagement.team.filter(
            role__in=WORKING_ROLES, user__is_active=True
        ).exclude(user=user)
        roles = dict(members.values_list("user_id", "role"))
        approvers = get_user_model().objects.filter(pk__in=roles).order_by("username")
        return type(cls.__name__, (cls,), {"approvers": approvers, "roles": roles})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["designated_approver"]
        field.queryset = self.approvers
        field.label_from_instance = self._approver_label

    def _approver_label(self, user) -> str:
        return APPROVER_LABEL.format(
            name=user.get_full_name() or user.username,
            username=user.username,
            role=self.roles.get(user.pk, ""),
        )


def request_approval_from_form(
    *,
    artefact,
    actor,
    approval_type,
    designated_approver=None,
    expires_at=None,
    request_notes="",
):
    """Ask for a review or sign-off of `artefact` with the request form's answers."""
    return approval_request(
        approval_type=approval_type,
        artefact=artefact,
        designated_approver=designated_approver,
        expires_at=expires_at,
        request_notes=request_notes,
        actor=actor,
    )


# What this app adds to the pages of the apps below it (registered in ApprovalsConfig.ready()).
ARTEFACT_PAGE = PageExtension(
    moves=(
        AdminMove(
            "request_approval",
            "Request approval",
            request_approval_from_form,
            form=ApprovalRequestForm,
            form_for=ApprovalRequestForm.for_artefact,
            available=lambda artefact: artefact.status in REVIEWABLE_STATUSES,
            bulk=False,
        ),
    ),
    before="new_version",
)


# What the "Final sign-off" section says is still missing before a request can succeed.
MISSING_RELIANCES = "{count} of {total} input data artefact(s) have no data reliance entry."
NO_CHECKLIST = "No disclosure checklist yet: pre-fill one from what the system holds."
CHECKLIST_DRAFT = "The disclosure checklist is a draft: the lead actuary, {lead}, completes it."
CHECKLIST_COMPLETED = "The disclosure checklist was completed by {user} on {when}."
CHECKLIST_STALE = (
    "The data reliance register changed since the checklist was completed: pre-fill it "
    "again and have the lead actuary complete it."
)
READY_FOR_SIGN_OFF = "Ready: a final sign-off request will freeze the completed checklist into it."


@dataclass
class FinalSignOffSection:
    """The engagement's disclosure checklist, what a final sign-off still needs, and requests."""

    checklist: DisclosureChecklist | None
    needs: list[str]
    ready: str = ""
    buttons: list[SectionButton] = field(default_factory=list)
    edit_url: str = ""
    request_url: str = ""
    sign_offs: list[Approval] = field(default_factory=list)


class ApprovalInline(ReadOnlyInline):
    model = Approval
    fk_name = "engagement"
    fields = ("approval_type", "artefact", "status", "requested_by", "approver", "requested_at")
    ordering = ("-requested_at",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("artefact", "engagement", "requested_by", "approver")
        )


def final_sign_off_section(
    model_admin, request, obj, reliance_rows, *, page: str
) -> FinalSignOffSection:
    """Return the "Final sign-off" section: the open checklist, what is missing, the moves."""
    user = request.user
    checklist = (
        DisclosureChecklist.objects.filter(engagement=obj, frozen_at__isnull=True)
        .select_related("responsible_actuary", "completed_by")
        .first()
    )
    if reliance_rows is None:
        reliance_rows = artefact_reliance_rows(request, obj, page=page)
    missing = sum(1 for row in reliance_rows if row.reliance is None)
    needs = []
    if missing:
        needs.append(MISSING_RELIANCES.format(count=missing, total=len(reliance_rows)))
    if checklist is None:
        needs.append(NO_CHECKLIST)
    elif checklist.status == DisclosureChecklistStatus.DRAFT:
        needs.append(CHECKLIST_DRAFT.format(lead=obj.lead_actuary or "none"))
    elif checklist.reliances != [row.reliance.snapshot() for row in reliance_rows if row.reliance]:
        # As the request would find it (the register as disclosures.reliance_snapshot reads it).
        needs.append(CHECKLIST_STALE)
    section = FinalSignOffSection(
        checklist=checklist,
        needs=needs,
        sign_offs=list(
            obj.approvals.filter(approval_type=ApprovalType.FINAL_SIGN_OFF)
            .select_related("requested_by", "approver")
            .order_by("-requested_at")
        ),
    )
    if checklist is not None and checklist.status == DisclosureChecklistStatus.COMPLETED:
        section.ready = CHECKLIST_COMPLETED.format(
            user=person(checklist.completed_by), when=format_datetime(checklist.completed_at)
        )
    if obj.status in CLOSED_STATUSES:
        return section
    changes_checklists = user.has_perm("approvals.change_disclosurechecklist")
    if changes_checklists:
        label = "Pre-fill again" if checklist is not None else "Pre-fill disclosure checklist"
        section.buttons.append(
            SectionButton(
                "prefill-disclosures", model_admin.move_url(obj, "prefill_disclosures"), label, page
            )
        )
    if checklist is not None:
        section.edit_url = reverse(
            "admin:approvals_disclosurechecklist_change", args=(checklist.pk,)
        )
        # Only the lead actuary completes it (the service refuses anyone else).
        if checklist.can("complete") and changes_checklists and user.pk == obj.lead_actuary_id:
            section.buttons.append(
                SectionButton(
                    "complete-disclosures",
                    reverse(
                        "admin:approvals_disclosurechecklist_move",
                        args=(checklist.pk, "complete"),
                    ),
                    "Complete checklist",
                    page,
                )
            )
    if not needs and user.has_perm("approvals.add_approval"):
        section.ready = f"{section.ready} {READY_FOR_SIGN_OFF}".strip()
        query = urlencode({"engagement": obj.pk, "approval_type": ApprovalType.FINAL_SIGN_OFF})
        section.request_url = f"{reverse('admin:approvals_approval_add')}?{query}"
    return section


def final_sign_off_context(model_admin, request, engagement, context) -> dict:
    """Return the engagement page's "Final sign-off" section and the buttons it places."""
    if not request.user.has_perm("approvals.view_disclosurechecklist"):
        return {}
    section = final_sign_off_section(
        model_admin,
        request,
        engagement,
        context.get("data_reliance"),
        page=request.get_full_path(),
    )
    return {"final_sign_off": section, "section_buttons": section.buttons}


ENGAGEMENT_PAGE = PageExtension(
    moves=(
        # The "Final sign-off" section's button: creates the checklist or refreshes it.
        AdminMove(
            "prefill_disclosures",
            "Pre-fill disclosure checklist",
            disclosure_checklist_prefill,
            available=lambda engagement: engagement.status not in CLOSED_STATUSES,
            bulk=False,
            object_tool=False,
        ),
    ),
    inlines=(ApprovalInline,),
    context=final_sign_off_context,
)
