"""Routes of the artefacts API, registered on the one router in config/api_router.py."""

from .views import ArtefactViewSet, DataRelianceViewSet

# (URL prefix, viewset, basename)
routes = (
    ("artefacts", ArtefactViewSet, "artefact"),
    ("data-reliances", DataRelianceViewSet, "data-reliance"),
)
