"""Artefact bytes are never served straight from MEDIA_ROOT, whatever DEBUG says."""

import importlib

import pytest
from django.test import override_settings
from django.urls import clear_url_caches

import config.urls
from tests.factories import ArtefactFactory

pytestmark = pytest.mark.django_db


def test_media_files_are_not_served_even_with_debug_on(client, superuser):
    artefact = ArtefactFactory()
    client.force_login(superuser)
    try:
        # Build the URLconf as `runserver` would with DEBUG on.
        with override_settings(DEBUG=True):
            importlib.reload(config.urls)
            clear_url_caches()
            response = client.get(f"/media/{artefact.file.name}")
    finally:
        importlib.reload(config.urls)
        clear_url_caches()
    assert response.status_code == 404
