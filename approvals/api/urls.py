"""Routes of the approvals API, registered on the one router in config/api_router.py."""

from .views import ApprovalViewSet, ProfessionalQualificationViewSet

# (URL prefix, viewset, basename)
routes = (
    ("approvals", ApprovalViewSet, "approval"),
    ("qualifications", ProfessionalQualificationViewSet, "qualification"),
)
