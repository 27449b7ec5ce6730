"""Artefact bytes are never served straight from MEDIA_ROOT, whatever DEBUG says."""

import pytest
from django.test import override_settings
from django.urls import clear_url_caches

from tests.factories import ArtefactFactory

pytestmark = pytest.mark.django_db


@override_settings(DEBUG=True)
def test_media_files_are_not_served_without_the_verified_download(client, superuser):
    clear_url_caches()
    artefact = ArtefactFactory()
    client.force_login(superuser)
    assert client.get(f"/media/{artefact.file.name}").status_code == 404
