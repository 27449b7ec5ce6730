"""Admin for AI assistant conversations."""

from django.contrib import admin

from audit.admin import RecordAdmin

from .models import ChatMessage, Session


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    fk_name = "session"
    extra = 0
    fields = ("created_at", "role", "content", "tool_name")
    readonly_fields = ("created_at",)
    ordering = ("created_at",)


@admin.register(Session)
class SessionAdmin(RecordAdmin):
    list_display = ("__str__", "user", "engagement", "last_activity_at", "created_at")
    search_fields = ("title", "user__username", "engagement__name")
    list_select_related = ("user", "engagement")
    autocomplete_fields = ("user", "engagement")
    date_hierarchy = "last_activity_at"
    ordering = ("-last_activity_at",)
    inlines = (ChatMessageInline,)


@admin.register(ChatMessage)
class ChatMessageAdmin(RecordAdmin):
    list_display = ("created_at", "session", "role", "short_content", "tool_name")
    list_filter = ("role",)
    search_fields = ("content", "tool_name", "=tool_call_id")
    list_select_related = ("session",)
    autocomplete_fields = ("session",)
    raw_id_fields = ("parent",)
    ordering = ("-created_at",)

    @admin.display(description="content")
    def short_content(self, obj):
        return obj.content[:80]
