import hashlib

import pytest
from django.db import IntegrityError, transaction

from artefacts.models import Artefact
from tests.factories import TRIANGLE_CSV, ArtefactFactory
from tests.lifecycle import check_every_move

pytestmark = pytest.mark.django_db

STATES = ("draft", "pending_review", "approved", "rejected", "superseded", "archived")
ALLOWED = {
    "submit_for_review": {"draft": "pending_review"},
    "approve": {"pending_review": "approved"},
    "reject": {"pending_review": "rejected"},
    "return_to_review": {"approved": "pending_review"},
    "supersede": dict.fromkeys(("draft", "pending_review", "approved", "rejected"), "superseded"),
    "archive": dict.fromkeys(
        ("draft", "pending_review", "approved", "rejected", "superseded"), "archived"
    ),
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("move", list(ALLOWED))
def test_artefact_lifecycle(state, move):
    artefact = ArtefactFactory()
    check_every_move(artefact, state, move, ALLOWED[move].get(state), lambda a: getattr(a, move)())


def test_artefact_saves_with_defaults_and_real_bytes():
    artefact = Artefact.objects.get(pk=ArtefactFactory().pk)
    assert artefact.status == "draft"
    assert artefact.version == 1
    assert artefact.storage_bucket == "artefacts"
    assert artefact.previous_version is None
    assert artefact.metadata == {}
    with artefact.file.open("rb") as handle:
        data = handle.read()
    assert data == TRIANGLE_CSV
    assert artefact.content_hash == hashlib.sha256(data).hexdigest()
    assert artefact.file_size == len(data)


def test_storage_path_uses_engagement_and_hash_not_only_the_name():
    artefact = ArtefactFactory()
    assert str(artefact.engagement_id) in artefact.file.name
    assert artefact.content_hash in artefact.file.name
    assert artefact.storage_url.endswith(artefact.file.name)


@pytest.mark.parametrize(
    ("status", "is_approved", "requires_approval"),
    [
        ("draft", False, True),
        ("pending_review", False, True),
        ("approved", True, False),
        ("rejected", False, False),
        ("superseded", False, False),
        ("archived", False, False),
    ],
)
def test_review_properties(status, is_approved, requires_approval):
    artefact = ArtefactFactory.build(status=status)
    assert artefact.is_approved is is_approved
    assert artefact.requires_approval is requires_approval


@pytest.mark.parametrize(
    "values",
    [
        {"version": 0},
        {"file_size": -1},
        {"content_hash": "not-a-sha256"},
        {"content_hash": "A" * 64},
    ],
    ids=["version-0", "negative-size", "bad-hash", "uppercase-hash"],
)
def test_constraints_reject_bad_rows(values):
    artefact = ArtefactFactory()
    for field, value in values.items():
        setattr(artefact, field, value)
    with pytest.raises(IntegrityError), transaction.atomic():
        artefact.save()


def test_version_chain_never_forks():
    first = ArtefactFactory()
    ArtefactFactory(engagement=first.engagement, previous_version=first, version=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        ArtefactFactory(engagement=first.engagement, previous_version=first, version=2)


def test_soft_delete_hides_artefact(user):
    artefact = ArtefactFactory()
    artefact.soft_delete(user)
    assert not Artefact.objects.filter(pk=artefact.pk).exists()
    assert Artefact.all_objects.get(pk=artefact.pk).deleted_by == user
