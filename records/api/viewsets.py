"""Viewset bases shared by the apps' APIs.

Kept apart from `config.api`, which DRF's settings import (permission and
pagination classes) before its views exist.
"""

from rest_framework import mixins, viewsets

from config.api import ServiceViewSetMixin


class KeptRecordViewSet(
    ServiceViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """A viewset for records that are created and edited but never deleted (no DELETE)."""
