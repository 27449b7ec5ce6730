"""Routes of the conversations API, registered on the one router in config/api_router.py."""

from .views import ChatMessageViewSet, SessionViewSet

# (URL prefix, viewset, basename)
routes = (
    ("sessions", SessionViewSet, "session"),
    (r"sessions/(?P<session_id>[^/.]+)/messages", ChatMessageViewSet, "session-message"),
)
