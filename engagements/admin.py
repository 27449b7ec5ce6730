"""Admin for engagements: the actuaries' main screen, with team, runs, artefacts, approvals.

Saving, deleting, team changes and lifecycle moves all go through
`engagements.services`, so the admin enforces the same rules as the API. The apps
above add their parts of the page (`records.admin.extensions`, registered in their
`AppConfig.ready()`): workflows its runs; artefacts its artefacts and the data
reliance register for the engagement's input data (ASOP 23); approvals its approvals
and the final sign-off: the disclosure checklist to pre-fill, edit and complete
(ASOP 41), and the sign-off requests. The page's own part is the team, the lifecycle
moves, the links that start work and the latest timeline entries.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import reverse

from audit.file_note import engagement_file_note
from audit.selectors import user_has_audit_trail
from audit.services import user_deactivate
from records.admin import (
    AdminMove,
    EngagementListFilter,
    RecordAdmin,
    ServiceAdminMixin,
    adopt,
    changed_data,
    form_data,
)
from records.exceptions import DomainError, InvalidInput

from .choices import CLOSED_STATUSES
from .models import Engagement, EngagementMember
from .selectors import engagements_visible_to, scope_to_user
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
    # Runs, artefacts and approvals are added by their apps (records.admin.extensions).
    inlines = (TeamInline,)
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
            # The latest business events, as the file note says them (enough rows read to
            # fold their changes under them and leave out the hidden kinds).
            context["timeline_entries"] = engagement_file_note(obj, limit=TIMELINE_ENTRIES * 4)[
                :TIMELINE_ENTRIES
            ]
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


# --- users: deactivated, never deleted; picked by team ----------------------------------

# Users other than superusers pick a designated approver among the people on their
# engagements' teams (the service refuses anyone else); (app_label, model_name, field).
TEAM_USER_FIELDS = frozenset({("approvals", "approval", "designated_approver")})


User = get_user_model()


@admin.action(description="Deactivate selected users")
def deactivate_users(modeladmin, request, queryset):
    """Deactivate the selected active users (they keep their place in the audit trail)."""
    deactivated = 0
    for user in queryset.filter(is_active=True):
        try:
            user_deactivate(user=user, actor=request.user)
        except DomainError as error:
            modeladmin.message_user(request, error.message, messages.ERROR)
        else:
            deactivated += 1
    modeladmin.message_user(request, f"Deactivated {deactivated} user(s).", messages.SUCCESS)


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    """User admin that deactivates users instead of deleting those in the audit trail."""

    actions = (deactivate_users,)

    def get_queryset(self, request):
        # Staff pick colleagues who can still act; a designated approver must moreover
        # be on the team of one of their engagements (the autocomplete says which field).
        queryset = super().get_queryset(request)
        user = request.user
        if user.is_superuser:
            return queryset
        queryset = queryset.filter(is_active=True)
        if _autocomplete_source(request) in TEAM_USER_FIELDS:
            teams = engagements_visible_to(user).values("pk")
            queryset = queryset.filter(
                pk__in=EngagementMember.objects.filter(engagement__in=teams).values("user")
            )
        return queryset

    def has_delete_permission(self, request, obj=None):
        # Without an object this is the bulk delete action, which would fail
        # half-way on the first user with a trail: offer deactivation instead.
        if obj is None or user_has_audit_trail(obj):
            return False
        return super().has_delete_permission(request, obj)


def _autocomplete_source(request) -> tuple[str, str, str] | None:
    """Return (app_label, model_name, field_name) of the autocomplete being served, if any."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.url_name != "autocomplete":
        return None
    return (
        request.GET.get("app_label", ""),
        request.GET.get("model_name", ""),
        request.GET.get("field_name", ""),
    )
