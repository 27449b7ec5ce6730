"""Routes of the artefacts API, registered on the one router in config/api_router.py."""

from .views import ArtefactViewSet

# (URL prefix, viewset, basename)
routes = (("artefacts", ArtefactViewSet, "artefact"),)
