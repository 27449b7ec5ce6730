import datetime

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Backup, Recovery
from tests.factories import BackupFactory, RecoveryFactory
from tests.lifecycle import check_every_move

pytestmark = pytest.mark.django_db

BACKUP_STATES = ("pending", "in_progress", "completed", "failed", "cancelled", "expired")
BACKUP_ALLOWED = {
    "start": {"pending": "in_progress"},
    "complete": {"in_progress": "completed"},
    "fail": {"pending": "failed", "in_progress": "failed"},
    "cancel": {"pending": "cancelled", "in_progress": "cancelled"},
    "expire": {"completed": "expired", "failed": "expired", "cancelled": "expired"},
}
RECOVERY_STATES = ("pending", "in_progress", "completed", "failed", "rolled_back")
RECOVERY_ALLOWED = {
    "start": {"pending": "in_progress"},
    "complete": {"in_progress": "completed"},
    "fail": {"pending": "failed", "in_progress": "failed"},
    "roll_back": {"completed": "rolled_back"},
}


def _call(move):
    if move == "fail":
        return lambda obj: obj.fail("disk full")
    return lambda obj: getattr(obj, move)()


@pytest.mark.parametrize("state", BACKUP_STATES)
@pytest.mark.parametrize("move", list(BACKUP_ALLOWED))
def test_backup_lifecycle(state, move):
    check_every_move(BackupFactory(), state, move, BACKUP_ALLOWED[move].get(state), _call(move))


@pytest.mark.parametrize("state", RECOVERY_STATES)
@pytest.mark.parametrize("move", list(RECOVERY_ALLOWED))
def test_recovery_lifecycle(state, move):
    check_every_move(RecoveryFactory(), state, move, RECOVERY_ALLOWED[move].get(state), _call(move))


def test_backup_defaults():
    backup = Backup.objects.get(pk=BackupFactory().pk)
    assert backup.status == "pending"
    assert backup.storage_provider == "local"
    assert backup.tables_included == [] and backup.metadata == {}
    assert backup.record_count == 0


def test_recovery_defaults():
    recovery = Recovery.objects.get(pk=RecoveryFactory().pk)
    assert recovery.status == "pending"
    assert recovery.options == {} and recovery.tables_recovered == []


def test_backup_is_expired_by_date():
    backup = BackupFactory(expires_at=timezone.now() - datetime.timedelta(days=1))
    assert backup.is_expired


def test_backup_negative_size_is_refused():
    with pytest.raises(IntegrityError), transaction.atomic():
        BackupFactory(file_size_bytes=-5)
