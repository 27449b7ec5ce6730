"""Routes of the engagements API, registered on the one router in config/api_router.py."""

from .views import EngagementMemberViewSet, EngagementViewSet, UserViewSet

# (URL prefix, viewset, basename)
routes = (
    ("engagements", EngagementViewSet, "engagement"),
    ("team-members", EngagementMemberViewSet, "team-member"),
    ("users", UserViewSet, "user"),
)
