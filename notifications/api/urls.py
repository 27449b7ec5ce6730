"""Routes of the notifications API, registered on the one router in config/api_router.py."""

from .views import NotificationPreferenceViewSet, NotificationViewSet

# (URL prefix, viewset, basename)
routes = (
    ("notifications", NotificationViewSet, "notification"),
    ("notification-preferences", NotificationPreferenceViewSet, "notification-preference"),
)
