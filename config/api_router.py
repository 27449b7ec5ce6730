"""The one REST API router: every app's viewsets under /api/v1/ (see docs/api/).

Each app lists its routes in `<app>/api/urls.py` as (prefix, viewset, basename);
they are registered here, on one DefaultRouter, so the API root lists them all and
every URL name lives in the "api" namespace (`api:engagement-detail`, …).
"""

from rest_framework.routers import DefaultRouter

from approvals.api.urls import routes as approval_routes
from artefacts.api.urls import routes as artefact_routes
from audit.api.urls import routes as audit_routes
from conversations.api.urls import routes as conversation_routes
from engagements.api.urls import routes as engagement_routes
from notifications.api.urls import routes as notification_routes
from workflows.api.urls import routes as workflow_routes

app_name = "api"

router = DefaultRouter()
for prefix, viewset, basename in (
    *engagement_routes,
    *workflow_routes,
    *artefact_routes,
    *approval_routes,
    *audit_routes,
    *conversation_routes,
    *notification_routes,
):
    router.register(prefix, viewset, basename=basename)

urlpatterns = router.urls
