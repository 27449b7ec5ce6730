"""The admin header's notifications link with the unread count (one indexed COUNT query)."""

from django import template
from django.urls import reverse
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def notifications_link(context):
    """Return "Notifications (N) /" linking to the user's unread notifications, or ""."""
    from notifications.selectors import UNREAD_COUNT_CAP, unread_count

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_active or not user.is_staff:
        return ""
    count = unread_count(user)
    shown = f"{UNREAD_COUNT_CAP}+" if count > UNREAD_COUNT_CAP else str(count)
    url = reverse("admin:notifications_notification_changelist")
    if count:
        return format_html(
            '<a href="{}?read=no" id="notifications-link" title="{} unread">Notifications '
            '<span id="notifications-unread" class="notifications-badge" style="background: '
            '#ba2121; color: #fff; border-radius: 9px; padding: 0 6px; font-weight: 600;">{}'
            "</span></a> / ",
            url,
            shown,
            shown,
        )
    return format_html('<a href="{}" id="notifications-link">Notifications</a> / ', url)
