"""Admin of notifications: each person's list and preferences; superusers' webhooks and deliveries.

- **Notifications**: every staff user sees their own (and only their own), unread ones
  in bold; opening one marks it read and goes to what it is about; actions mark
  selected ones read or unread, a button marks all read. The header shows the unread
  count on every admin page (`templates/admin/base_site.html`).
- **Notification preferences**: each person edits their own (which events, email on or
  off, each or a daily digest); superusers may edit anyone's.
- **Webhook endpoints** and the **email and webhook deliveries**: superusers only; a
  delivery is read-only, with a "Resend" action for sent or failed ones.

Every change goes through `notifications.services`.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from records.admin import AdminMove, ServiceAdminMixin, adopt, changed_data

from .choices import RESENDABLE_STATUSES, NotificationEvent
from .models import (
    EmailDelivery,
    Notification,
    NotificationPreference,
    WebhookDelivery,
    WebhookEndpoint,
)
from .services import (
    email_delivery_resend,
    notification_mark_read,
    notification_mark_unread,
    notification_preference_update,
    notifications_mark_all_read,
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)

ALL_READ = "Marked {count} notification(s) as read."
NONE_UNREAD = "You have no unread notifications."
SECRET_ROTATED = "New secret of “{endpoint}”: {secret} — give it to the receiving system."
PREFERENCES_SAVED = "Your notification preferences were saved."


def is_staff(request) -> bool:
    """Return whether the request's user may use the admin at all."""
    return request.user.is_active and request.user.is_staff


def is_superuser(request) -> bool:
    """Return whether the request's user is an active superuser."""
    return request.user.is_active and request.user.is_superuser


class ReadFilter(admin.SimpleListFilter):
    """Unread or read notifications."""

    title = "read"
    parameter_name = "read"

    def lookups(self, request, model_admin):
        return (("no", "Unread"), ("yes", "Read"))

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(read_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(read_at__isnull=False)
        return queryset


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Each person's own notifications, newest first; read ones in plain type."""

    list_display = ("headline", "event", "engagement", "actor", "created_at", "read_at")
    list_filter = (ReadFilter, "event")
    search_fields = ("subject", "message", "engagement_label")
    list_select_related = ("actor",)
    ordering = ("-created_at",)
    list_per_page = 50
    actions = ("mark_read", "mark_unread")
    change_list_template = "admin/notifications/notification/change_list.html"
    fields = (
        "subject",
        "message",
        "target",
        "event",
        "engagement_label",
        "actor",
        "created_at",
        "read_at",
        "email",
    )
    readonly_fields = fields

    # Notifications are personal: every staff user reads and marks their own, whatever
    # their model permissions; nobody adds, edits or deletes them.
    def has_module_permission(self, request):
        return is_staff(request)

    def has_view_permission(self, request, obj=None):
        return is_staff(request) and (obj is None or obj.recipient_id == request.user.pk)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(recipient=request.user)

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {"title": "My notifications", **(extra_context or {})}
        )

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/open/",
                self.admin_site.admin_view(self.open_view),
                name="{}_{}_open".format(*info),
            ),
            path(
                "read-all/",
                self.admin_site.admin_view(self.read_all_view),
                name="{}_{}_read_all".format(*info),
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Show the notification; seeing it is reading it."""
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and obj.read_at is None:
            notification_mark_read(notification=obj, actor=request.user)
        return super().change_view(request, object_id, form_url, extra_context)

    def open_view(self, request, object_id):
        """Mark the notification read and go to what it is about."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        notification_mark_read(notification=obj, actor=request.user)
        if obj.link and url_has_allowed_host_and_scheme(obj.link, allowed_hosts=None):
            return HttpResponseRedirect(obj.link)
        return HttpResponseRedirect(
            reverse("admin:notifications_notification_change", args=(obj.pk,))
        )

    def read_all_view(self, request):
        """Mark every unread notification of the user as read (POST)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not is_staff(request):
            raise PermissionDenied
        count = notifications_mark_all_read(actor=request.user)
        if count:
            self.message_user(request, ALL_READ.format(count=count), messages.SUCCESS)
        else:
            self.message_user(request, NONE_UNREAD, messages.INFO)
        return HttpResponseRedirect(reverse("admin:notifications_notification_changelist"))

    @admin.display(description="notification", ordering="subject")
    def headline(self, obj):
        url = reverse("admin:notifications_notification_open", args=(obj.pk,))
        if obj.read_at is None:
            return format_html('<a href="{}"><strong>{}</strong></a>', url, obj.subject)
        return format_html('<a href="{}">{}</a>', url, obj.subject)

    @admin.display(description="engagement", ordering="engagement_label")
    def engagement(self, obj):
        return obj.engagement_label or "—"

    @admin.display(description="about")
    def target(self, obj):
        if not obj.link:
            return "—"
        return format_html('<a href="{}">{}</a>', obj.link, "Open the page it is about")

    @admin.action(description="Mark selected notifications as read", permissions=("view",))
    def mark_read(self, request, queryset):
        count = 0
        for notification in queryset.filter(read_at__isnull=True):
            notification_mark_read(notification=notification, actor=request.user)
            count += 1
        self.message_user(request, ALL_READ.format(count=count), messages.SUCCESS)

    @admin.action(description="Mark selected notifications as unread", permissions=("view",))
    def mark_unread(self, request, queryset):
        count = 0
        for notification in queryset.filter(read_at__isnull=False):
            notification_mark_unread(notification=notification, actor=request.user)
            count += 1
        self.message_user(request, f"Marked {count} notification(s) as unread.", messages.SUCCESS)


# --- preferences -------------------------------------------------------------------------


class PreferenceForm(forms.ModelForm):
    """The preferences, with the events as checkboxes of what the person wants to hear."""

    events = forms.MultipleChoiceField(
        label="Tell me about",
        choices=NotificationEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Untick what you do not want to hear about at all (in the back office or "
        "by email).",
    )

    class Meta:
        model = NotificationPreference
        fields = ("email_enabled", "email_mode")
        widgets = {"email_mode": forms.RadioSelect}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        muted = set(self.instance.muted_events or [])
        self.fields["events"].initial = [v for v in NotificationEvent.values if v not in muted]

    def service_data(self) -> dict:
        """Return the preferences as the service takes them."""
        wanted = set(self.cleaned_data.get("events") or [])
        return {
            "email_enabled": self.cleaned_data["email_enabled"],
            "email_mode": self.cleaned_data["email_mode"],
            "muted_events": [v for v in NotificationEvent.values if v not in wanted],
        }


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(ServiceAdminMixin, admin.ModelAdmin):
    """Each person's own preferences (superusers: everyone's)."""

    form = PreferenceForm
    view_on_site = False
    list_display = ("user", "email_enabled", "email_mode", "muted_count", "updated_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "user__first_name", "user__last_name")
    fieldsets = ((None, {"fields": ("user", "email_enabled", "email_mode", "events")}),)
    readonly_fields = ("user",)

    def has_module_permission(self, request):
        return is_staff(request)

    def has_view_permission(self, request, obj=None):
        return self._own_or_superuser(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._own_or_superuser(request, obj)

    def has_add_permission(self, request):
        return False  # made on first visit of "my preferences"

    def has_delete_permission(self, request, obj=None):
        return False

    def _own_or_superuser(self, request, obj) -> bool:
        if not is_staff(request):
            return False
        return request.user.is_superuser or obj is None or obj.user_id == request.user.pk

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def get_urls(self):
        return [
            path(
                "mine/",
                self.admin_site.admin_view(self.mine_view),
                name="notifications_notificationpreference_mine",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        if not request.user.is_superuser:
            return HttpResponseRedirect(reverse("admin:notifications_notificationpreference_mine"))
        return super().changelist_view(request, extra_context)

    def mine_view(self, request):
        """Open the user's own preferences (making them, with the defaults, on first visit)."""
        if not is_staff(request):
            raise PermissionDenied
        preference = notification_preference_update(user=request.user, actor=request.user, data={})
        return HttpResponseRedirect(
            reverse("admin:notifications_notificationpreference_change", args=(preference.pk,))
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and obj.user_id == request.user.pk:
            extra_context = {"title": "My notification preferences", **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        saved = notification_preference_update(
            user=obj.user, actor=request.user, data=form.service_data()
        )
        adopt(obj, saved)

    def response_change(self, request, obj):
        if not request.user.is_superuser and "_continue" not in request.POST:
            self.message_user(request, PREFERENCES_SAVED, messages.SUCCESS)
            return HttpResponseRedirect(
                reverse("admin:notifications_notificationpreference_change", args=(obj.pk,))
            )
        return super().response_change(request, obj)

    @admin.display(description="muted events")
    def muted_count(self, obj):
        return len(obj.muted_events or [])


# --- webhooks (superusers) ---------------------------------------------------------------


class SuperuserOnlyMixin:
    """Only active superusers see and use these pages."""

    def has_module_permission(self, request):
        return is_superuser(request)

    def has_view_permission(self, request, obj=None):
        return is_superuser(request)

    def has_change_permission(self, request, obj=None):
        return is_superuser(request)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WebhookEndpointForm(forms.ModelForm):
    """Registration of an endpoint: events as checkboxes; the secret generated if left empty."""

    events = forms.MultipleChoiceField(
        choices=NotificationEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="The events the endpoint receives.",
    )
    secret = forms.CharField(
        required=False,
        max_length=128,
        help_text="Leave empty to generate one. It signs every delivery; the receiver verifies "
        "it (docs/notifications.md).",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("name", "url", "owner", "events", "secret", "is_active", "description")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = get_user_model().objects.filter(is_active=True)
        if self.instance.pk:
            self.fields["events"].initial = list(self.instance.events)


def _rotate_report(obj, secret):
    return messages.WARNING, SECRET_ROTATED.format(endpoint=obj, secret=secret)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(SuperuserOnlyMixin, ServiceAdminMixin, admin.ModelAdmin):
    """Endpoints of other systems (superusers); never deleted: deactivate one instead."""

    form = WebhookEndpointForm
    view_on_site = False
    list_display = ("name", "url", "owner", "is_active", "event_list", "updated_at")
    list_filter = ("is_active",)
    list_select_related = ("owner",)
    search_fields = ("name", "url", "description")
    service_object_argument = "endpoint"
    service_moves = (
        AdminMove(
            name="rotate_secret",
            label="Rotate secret",
            service=webhook_endpoint_rotate_secret,
            available=lambda obj: True,
            report=_rotate_report,
        ),
    )

    def has_add_permission(self, request):
        return is_superuser(request)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "url", "owner", "events", "secret", "is_active", "description")
        return ("name", "url", "owner", "events", "is_active", "description", "shown_secret")

    def get_readonly_fields(self, request, obj=None):
        return ("shown_secret",) if obj is not None else ()

    @admin.display(description="secret")
    def shown_secret(self, obj):
        return format_html("<code>{}</code>", obj.secret)

    @admin.display(description="events")
    def event_list(self, obj):
        return ", ".join(obj.events)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            saved = webhook_endpoint_create(
                actor=request.user,
                name=data["name"],
                url=data["url"],
                events=data["events"],
                owner=data["owner"],
                secret=data.get("secret") or "",
                is_active=data.get("is_active", True),
                description=data.get("description", ""),
            )
        else:
            fields = ("name", "url", "owner", "events", "is_active", "description")
            saved = webhook_endpoint_update(
                endpoint=obj, actor=request.user, data=changed_data(form, fields)
            )
        adopt(obj, saved)


class DeliveryAdmin(SuperuserOnlyMixin, ServiceAdminMixin, admin.ModelAdmin):
    """A record of deliveries: read-only, with Resend for sent or failed ones."""

    list_filter = ("status",)
    ordering = ("-created_at",)
    list_per_page = 50
    extra_readonly: tuple[str, ...] = ()

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.concrete_fields] + list(
            self.extra_readonly
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A record to read (and resend), never to edit: no Save buttons.
        extra_context = {
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        """Never save a delivery from its page: its fields are the sending's record."""

    @admin.display(description="last error")
    def short_error(self, obj):
        return (obj.last_error[:120] + "…") if len(obj.last_error) > 120 else obj.last_error


def _resendable(obj) -> bool:
    return obj.status in RESENDABLE_STATUSES


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(DeliveryAdmin):
    list_display = (
        "created_at",
        "endpoint",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "short_error",
        "sent_at",
    )
    list_filter = ("status", "event", "endpoint")
    list_select_related = ("endpoint",)
    search_fields = ("=id", "key")
    extra_readonly = ("pretty_payload",)
    exclude = ("payload",)
    service_object_argument = "delivery_record"
    service_moves = (
        AdminMove(
            name="resend", label="Resend", service=webhook_delivery_resend, available=_resendable
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return [field for field in fields if field != "payload"]

    @admin.display(description="payload")
    def pretty_payload(self, obj):
        return format_html(
            '<pre style="white-space: pre-wrap;">{}</pre>',
            json.dumps(obj.payload, indent=2, sort_keys=True, ensure_ascii=False),
        )


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(DeliveryAdmin):
    list_display = (
        "created_at",
        "recipient",
        "mode",
        "subject",
        "status",
        "attempts",
        "short_error",
        "sent_at",
    )
    list_filter = ("status", "mode")
    list_select_related = ("recipient",)
    search_fields = ("=id", "to_address", "subject")
    service_object_argument = "delivery_record"
    service_moves = (
        AdminMove(
            name="resend", label="Resend", service=email_delivery_resend, available=_resendable
        ),
    )
