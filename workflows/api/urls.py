"""Routes of the workflows API, registered on the one router in config/api_router.py."""

from .views import WorkflowRunViewSet

# (URL prefix, viewset, basename)
routes = (("workflow-runs", WorkflowRunViewSet, "workflow-run"),)
