"""Admin for AI assistant conversations, through `conversations.services`.

Messages are appended, never edited or deleted: existing ones are read-only, new
ones go through `chat_message_add` (which bumps the session's last activity). A tool
call an agent made through the MCP server (`conversations.mcp`) shows with its
arguments, its outcome and links to the objects it touched.
"""

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from records.admin import EngagementListFilter, RecordAdmin, ServiceAdminMixin, adopt, changed_data

from .models import ChatMessage, Session
from .services import (
    EDITABLE_FIELDS,
    chat_message_add,
    session_create,
    session_delete,
    session_update,
)

MESSAGE_FIELDS = ("role", "content", "tool_name", "tool_call_id", "metadata", "parent")


def scope_to_owner(queryset, user, *, path="user"):
    """Return the rows of sessions `user` owns (superusers see every session)."""
    if user.is_superuser:
        return queryset
    return queryset.filter(**{path: user})


def touched_links(touched) -> str:
    """Return links to the admin pages of the objects a tool call touched (text if none)."""
    items = []
    for item in touched or ():
        if not isinstance(item, dict) or "." not in str(item.get("model", "")):
            continue
        app_label, model_name = item["model"].split(".", 1)
        label = item.get("label") or item.get("id")
        try:
            url = reverse(f"admin:{app_label}_{model_name}_change", args=(item.get("id"),))
        except NoReverseMatch:
            items.append((format_html("{} {}", model_name, label),))
            continue
        items.append((format_html('<a href="{}">{} {}</a>', url, model_name, label),))
    return format_html_join(", ", "{}", items)


def tool_call_summary(message: ChatMessage) -> str:
    """Return what a tool message records: the call's arguments, or its outcome and links."""
    metadata = message.metadata if isinstance(message.metadata, dict) else {}
    calls = metadata.get("tool_calls") or []
    if not calls:
        return "-"
    call = calls[0] if isinstance(calls[0], dict) else {}
    function = call.get("function") or {}
    if function:
        # The call: its arguments, and what its result says it touched.
        replies = [r for r in message.replies.all() if r.tool_call_id == message.tool_call_id]
        touched = replies[0].metadata.get("touched") if replies else None
        return format_html(
            "<code>{}({})</code><br>{}",
            function.get("name", message.tool_name),
            function.get("arguments", ""),
            touched_links(touched),
        )
    error = metadata.get("error") or {}
    return format_html(
        "{} {}<br>{}",
        call.get("status", ""),
        error.get("code", ""),
        touched_links(metadata.get("touched")),
    )


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    fk_name = "session"
    extra = 0
    fields = ("created_at", "role", "content", "tool_name", "tool_call")
    readonly_fields = ("created_at", "tool_call")
    ordering = ("created_at",)
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("replies")

    def has_change_permission(self, request, obj=None):
        # Existing messages are shown read-only; new rows are still offered.
        return False

    @admin.display(description="tool call")
    def tool_call(self, obj):
        if obj.pk is None:
            return "-"
        return tool_call_summary(obj)


@admin.register(Session)
class SessionAdmin(ServiceAdminMixin, RecordAdmin):
    list_display = ("__str__", "user", "engagement", "last_activity_at", "created_at")
    list_filter = (EngagementListFilter,)
    search_fields = ("title", "user__username", "engagement__name")
    list_select_related = ("user", "engagement")
    autocomplete_fields = ("user", "engagement")
    date_hierarchy = "last_activity_at"
    ordering = ("-last_activity_at",)
    inlines = (ChatMessageInline,)
    readonly_fields = ("last_activity_at",)

    service_object_argument = "session"
    delete_service = session_delete

    def get_queryset(self, request):
        return scope_to_owner(super().get_queryset(request), request.user)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return readonly if obj is None else (*readonly, "user")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            saved = session_create(
                actor=request.user,
                user=data.get("user"),
                engagement=data.get("engagement"),
                title=data.get("title", ""),
                context=data.get("context"),
            )
        else:
            changes = changed_data(form, EDITABLE_FIELDS)
            if not changes:
                return
            saved = session_update(session=obj, actor=request.user, data=changes)
        adopt(obj, saved)

    def save_formset(self, request, form, formset, change):
        new = []
        for message_form in formset.extra_forms:
            if not message_form.has_changed():
                continue
            data = message_form.cleaned_data
            new.append(
                chat_message_add(
                    session=form.instance,
                    actor=request.user,
                    role=data["role"],
                    content=data["content"],
                    tool_name=data.get("tool_name", ""),
                )
            )
        # What construct_change_message reads after formset.save().
        formset.new_objects, formset.changed_objects, formset.deleted_objects = new, [], []


@admin.register(ChatMessage)
class ChatMessageAdmin(ServiceAdminMixin, RecordAdmin):
    list_display = ("created_at", "session", "role", "short_content", "tool_name")
    list_filter = ("role",)
    search_fields = ("content", "tool_name", "=tool_call_id")
    list_select_related = ("session",)
    autocomplete_fields = ("session",)
    raw_id_fields = ("parent",)
    readonly_fields = ("created_at", "tool_call")
    ordering = ("-created_at",)

    @admin.display(description="content")
    def short_content(self, obj):
        return obj.content[:80]

    @admin.display(description="tool call")
    def tool_call(self, obj):
        if obj.pk is None:
            return "-"
        return tool_call_summary(obj)

    def get_queryset(self, request):
        return scope_to_owner(super().get_queryset(request), request.user, path="session__user")

    def has_change_permission(self, request, obj=None):
        # A conversation is a record: messages are appended, never edited.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = chat_message_add(
            session=data["session"],
            actor=request.user,
            **{name: data[name] for name in MESSAGE_FIELDS if name in data},
        )
        adopt(obj, saved)
