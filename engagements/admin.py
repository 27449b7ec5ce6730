"""Admin for engagements: the actuaries' main screen, with team, runs, artefacts, approvals.

Saving, deleting, team changes and lifecycle moves all go through
`engagements.services`, so the admin enforces the same rules as the API.
"""

from django import forms
from django.contrib import admin
from django.urls import reverse

from approvals.models import Approval
from artefacts.models import Artefact
from audit.admin import EngagementListFilter, RecordAdmin
from audit.selectors import engagement_timeline
from config.exceptions import InvalidInput
from config.service_admin import AdminMove, ServiceAdminMixin, adopt, changed_data, form_data
from workflows.models import WorkflowRun

from .choices import CLOSED_STATUSES
from .models import Engagement, EngagementMember
from .selectors import scope_to_user
from .services import (
    EDITABLE_FIELDS,
    engagement_activate,
    engagement_archive,
    engagement_cancel,
    engagement_complete,
    engagement_create,
    engagement_delete,
    engagement_hold,
    engagement_member_add,
    engagement_member_remove,
    engagement_member_update,
    engagement_update,
)

MEMBER_USER_FIXED = (
    "A team row keeps its person: change their role, or remove them and add the other person."
)
# How many of the latest timeline entries the engagement page shows (the rest: its link).
TIMELINE_ENTRIES = 15
# Work started from the engagement page: (label, add view, permission); the add form
# opens with this engagement chosen.
ENGAGEMENT_ADD_LINKS = (
    ("Upload artefact", "admin:artefacts_artefact_add", "artefacts.add_artefact"),
    ("New workflow run", "admin:workflows_workflowrun_add", "workflows.add_workflowrun"),
    ("Request sign-off", "admin:approvals_approval_add", "approvals.add_approval"),
)


class TeamMemberForm(forms.ModelForm):
    """A team row: a new row picks its person; an existing row keeps its person, shown."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding and "user" in self.fields:
            field = self.fields["user"]
            field.disabled = True
            # Shown from the row itself: no autocomplete lookup per team member.
            field.widget = forms.Select(choices=((self.instance.user_id, str(self.instance.user)),))


class TeamInline(admin.TabularInline):
    model = EngagementMember
    form = TeamMemberForm
    fk_name = "engagement"
    extra = 0
    fields = ("user", "role")
    autocomplete_fields = ("user",)
    verbose_name_plural = "team"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


class ReadOnlyInline(admin.TabularInline):
    """Summary rows of an engagement's contents; open a row to work on it."""

    extra = 0
    show_change_link = True
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class WorkflowRunInline(ReadOnlyInline):
    model = WorkflowRun
    fields = ("name", "workflow_type", "period", "status", "started_at", "completed_at")
    ordering = ("-created_at",)


class ArtefactInline(ReadOnlyInline):
    model = Artefact
    fk_name = "engagement"
    fields = ("name", "artefact_type", "version", "status", "file_size", "created_at")
    ordering = ("-created_at",)


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


@admin.register(Engagement)
class EngagementAdmin(ServiceAdminMixin, RecordAdmin):
    list_display = (
        "client_code",
        "name",
        "client_name",
        "engagement_type",
        "status",
        "lead_actuary",
        "reviewer",
        "due_date",
    )
    list_filter = ("status", "engagement_type", "due_date")
    search_fields = ("client_code", "client_name", "name", "description")
    list_select_related = ("lead_actuary", "reviewer")
    autocomplete_fields = ("lead_actuary", "reviewer")
    date_hierarchy = "due_date"
    ordering = ("-created_at",)
    inlines = (TeamInline, WorkflowRunInline, ArtefactInline, ApprovalInline)
    fieldsets = (
        (None, {"fields": ("client_code", "client_name", "name", "description")}),
        (
            "Scope",
            {"fields": ("engagement_type", "status", "period_start", "period_end", "due_date")},
        ),
        ("People", {"fields": ("lead_actuary", "reviewer")}),
        ("Settings", {"classes": ("collapse",), "fields": ("config", "metadata")}),
        (
            "Record",
            {
                "classes": ("collapse",),
                "fields": ("id", "created_at", "created_by", "updated_at", "updated_by"),
            },
        ),
    )

    service_object_argument = "engagement"
    service_moves = (
        AdminMove("activate", "Activate", engagement_activate),
        AdminMove("hold", "Put on hold", engagement_hold),
        AdminMove("complete", "Complete", engagement_complete),
        AdminMove("archive", "Archive", engagement_archive),
        AdminMove("cancel", "Cancel", engagement_cancel),
    )
    delete_service = engagement_delete

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user, engagement_path="")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add:
            context.update(self._workspace_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _workspace_context(self, request, obj) -> dict:
        """Return the engagement page's latest timeline entries and its "add work" links."""
        user = request.user
        context = {}
        if user.has_perm("audit.view_auditlog"):
            context["timeline_entries"] = engagement_timeline(obj, limit=TIMELINE_ENTRIES)
            context["timeline_url"] = reverse("admin:audit_auditlog_timeline", args=(obj.pk,))
        if obj.status not in CLOSED_STATUSES:
            context["engagement_add_links"] = [
                (label, f"{reverse(view)}?engagement={obj.pk}")
                for label, view, permission in ENGAGEMENT_ADD_LINKS
                if user.has_perm(permission)
            ]
        return context

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and not obj.is_editable:
            # Only draft and active engagements may be edited (the service refuses the rest).
            readonly = (*readonly, *(f for f in sorted(EDITABLE_FIELDS) if f not in readonly))
        return readonly

    def save_model(self, request, obj, form, change):
        if not change:
            saved = engagement_create(actor=request.user, **form_data(form, EDITABLE_FIELDS))
        else:
            data = changed_data(form, EDITABLE_FIELDS)
            if not data:
                return
            saved = engagement_update(engagement=obj, actor=request.user, data=data)
        adopt(obj, saved)

    def save_formset(self, request, form, formset, change):
        if formset.model is not EngagementMember:
            return super().save_formset(request, form, formset, change)
        actor = request.user
        new, changed, deleted = [], [], []
        for member_form in formset.initial_forms:
            member = member_form.instance
            if member_form in formset.deleted_forms:
                engagement_member_remove(member=member, actor=actor)
                deleted.append(member)
            elif member_form.has_changed():
                if "user" in member_form.changed_data:
                    raise InvalidInput(MEMBER_USER_FIXED)
                role = member_form.cleaned_data["role"]
                engagement_member_update(member=member, role=role, actor=actor)
                changed.append((member, member_form.changed_data))
        for member_form in formset.extra_forms:
            if not member_form.has_changed() or member_form in formset.deleted_forms:
                continue
            new.append(
                engagement_member_add(
                    engagement=form.instance,
                    user=member_form.cleaned_data["user"],
                    role=member_form.cleaned_data["role"],
                    actor=actor,
                )
            )
        # What construct_change_message reads after formset.save().
        formset.new_objects, formset.changed_objects, formset.deleted_objects = (
            new,
            changed,
            deleted,
        )
        return None


@admin.register(EngagementMember)
class EngagementMemberAdmin(ServiceAdminMixin, RecordAdmin):
    list_display = ("engagement", "user", "role", "created_at")
    list_filter = ("role", EngagementListFilter)
    search_fields = ("engagement__name", "engagement__client_code", "user__username")
    list_select_related = ("engagement", "user")
    autocomplete_fields = ("engagement", "user")
    ordering = ("engagement", "role")

    service_object_argument = "member"
    delete_service = engagement_member_remove

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        # A membership keeps its engagement and person; only the role changes.
        return readonly if obj is None else (*readonly, "engagement", "user")

    def save_model(self, request, obj, form, change):
        if not change:
            saved = engagement_member_add(
                engagement=form.cleaned_data["engagement"],
                user=form.cleaned_data["user"],
                role=form.cleaned_data["role"],
                actor=request.user,
            )
        elif "role" in form.changed_data:
            saved = engagement_member_update(
                member=obj, role=form.cleaned_data["role"], actor=request.user
            )
        else:
            return
        adopt(obj, saved)
