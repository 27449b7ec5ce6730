"""Routes of the approvals API, registered on the one router in config/api_router.py."""

from .views import (
    ApprovalViewSet,
    DisclosureChecklistViewSet,
    ProfessionalQualificationViewSet,
    ReviewPointViewSet,
)

# (URL prefix, viewset, basename)
routes = (
    ("approvals", ApprovalViewSet, "approval"),
    ("review-points", ReviewPointViewSet, "review-point"),
    ("disclosure-checklists", DisclosureChecklistViewSet, "disclosure-checklist"),
    ("qualifications", ProfessionalQualificationViewSet, "qualification"),
)
