"""The admin base every domain model admin builds on, and the engagement filter they share."""

import uuid

from django.contrib import admin
from django.contrib.admin.options import csrf_protect_m
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.db import router
from simple_history.admin import SimpleHistoryAdmin

from ..pagination import EstimatedCountPaginator
from ..scoping import engagement_model, engagements_visible_to, scoped_choices
from ..transactions import audited_transaction

# Filter sidebars list at most this many choices (the latest), plus the one chosen: a
# firm has 10,000 engagements, and listing them made each changelist 1.35 MB (issue 18).
FILTER_CHOICES_LIMIT = 30

TRACKED_FIELDS = ("created_at", "created_by", "updated_at", "updated_by")
SOFT_DELETE_FIELDS = ("is_deleted", "deleted_at", "deleted_by")


class RecordAdmin(SimpleHistoryAdmin):
    """Admin of a domain record: history view, audit fields read-only, stamped with the user.

    `status` is always read-only: states change only through lifecycle actions.
    Deleting a soft-deletable record hides it instead of destroying it.
    """

    readonly_record_fields = ("id", "status", *TRACKED_FIELDS, *SOFT_DELETE_FIELDS, "trace_id")
    # Exact counts up to EXACT_COUNT_LIMIT rows, PostgreSQL's estimate above (records.pagination).
    paginator = EstimatedCountPaginator

    # Saving and deleting run in an audited transaction, not Django's plain atomic
    # block: the services they call then append their audit events when the whole
    # page's work is done, taking the chain head last (see records.transactions).
    @csrf_protect_m
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return self._changeform_view(request, object_id, form_url, extra_context)
        with audited_transaction(using=router.db_for_write(self.model)):
            return self._changeform_view(request, object_id, form_url, extra_context)

    @csrf_protect_m
    def delete_view(self, request, object_id, extra_context=None):
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return self._delete_view(request, object_id, extra_context)
        with audited_transaction(using=router.db_for_write(self.model)):
            return self._delete_view(request, object_id, extra_context)

    def get_readonly_fields(self, request, obj=None):
        own = tuple(super().get_readonly_fields(request, obj))
        model_fields = {f.name for f in self.model._meta.get_fields()}
        shared = tuple(f for f in self.readonly_record_fields if f in model_fields)
        return own + tuple(f for f in shared if f not in own)

    def save_model(self, request, obj, form, change):
        if hasattr(obj, "updated_by_id"):
            if not change:
                obj.created_by = request.user
            obj.updated_by = request.user
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        if hasattr(obj, "soft_delete"):
            obj.soft_delete(request.user)
        else:
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        if hasattr(queryset.model, "soft_delete"):
            for obj in queryset:
                obj.soft_delete(request.user)
        else:
            super().delete_queryset(request, queryset)

    def history_view(self, request, object_id, extra_context=None):
        # django-simple-history falls back to the history rows of an object the queryset
        # does not hold: another team's object must stay as if it did not exist.
        if not self._in_scope(request, object_id):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if not self._in_scope(request, object_id):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)

    def _in_scope(self, request, object_id) -> bool:
        """Return whether the user's queryset holds the object (superusers: deleted ones too)."""
        if request.user.is_superuser:
            return True
        return self.get_object(request, unquote(object_id)) is not None

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A form offers (and accepts) only the engagements, runs, artefacts and chat
        # sessions the user may see: a hand-typed id of another engagement's object
        # is "not a valid choice", as if it did not exist.
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if formfield is not None and hasattr(formfield, "queryset"):
            formfield.queryset = scoped_choices(formfield.queryset, request.user)
        return formfield


class EngagementListFilter(admin.SimpleListFilter):
    """Filter by engagement: those the user may see (by the indexed engagement_id column).

    Works on the audit log's engagement_id and on every model with an engagement
    foreign key (whose column is engagement_id too); a model that reaches its
    engagement through another row names the lookup in `engagement_field`.
    """

    title = "engagement"
    parameter_name = "engagement_id"
    engagement_field = "engagement_id"

    def lookups(self, request, model_admin):
        """Return the latest FILTER_CHOICES_LIMIT engagements the user may see, and the chosen one.

        Any other engagement is one click away: its page links to its runs, artefacts
        and timeline, which carry `?engagement_id=`.
        """
        if request.user.is_superuser:
            # Deleted engagements keep their audit trail, runs and artefacts.
            engagements = engagement_model().all_objects.all()
        else:
            engagements = engagements_visible_to(request.user)
        engagements = engagements.only("id", "client_code", "name")
        latest = list(engagements.order_by("-created_at")[:FILTER_CHOICES_LIMIT])
        chosen = _uuid_or_none(self.value())
        if chosen is not None and all(engagement.pk != chosen for engagement in latest):
            latest += list(engagements.filter(pk=chosen))
        latest.sort(key=lambda engagement: (engagement.client_code, engagement.name))
        return [(str(engagement.pk), str(engagement)) for engagement in latest]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            engagement_id = uuid.UUID(self.value())
        except ValueError:
            return queryset.none()
        return queryset.filter(**{self.engagement_field: engagement_id})


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


class UserListFilter(admin.SimpleListFilter):
    """Filter by acting user: the FILTER_CHOICES_LIMIT who logged in last, and the chosen one.

    Keeps the parameter of Django's own related-field filter (`user__id__exact`), so
    links made for it still work.
    """

    title = "user"
    parameter_name = "user__id__exact"
    user_field = "user_id"

    def lookups(self, request, model_admin):
        users = get_user_model().objects.only("id", "username")
        latest = list(users.order_by("-last_login", "-id")[:FILTER_CHOICES_LIMIT])
        chosen = self.value()
        if chosen and chosen.isdigit() and all(str(user.pk) != chosen for user in latest):
            latest += list(users.filter(pk=int(chosen)))
        latest.sort(key=lambda user: user.get_username())
        return [(str(user.pk), user.get_username()) for user in latest]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if not self.value().isdigit():
            return queryset.none()
        return queryset.filter(**{self.user_field: int(self.value())})


class ReadOnlyInline(admin.TabularInline):
    """Summary rows of a record's contents (an engagement's runs, …); open a row to work on it."""

    extra = 0
    show_change_link = True
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False
