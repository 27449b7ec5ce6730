"""The verify_artefacts command: re-hash every stored file, report and audit problems."""

import io
import re
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from artefacts.management.commands import verify_artefacts
from artefacts.models import Artefact
from audit.models import AuditLog
from tests.factories import ArtefactFactory, EngagementFactory

pytestmark = pytest.mark.django_db


def run(*args):
    """Run the command; return its stdout, or raise CommandError with stdout attached."""
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command("verify_artefacts", *args, stdout=stdout, stderr=stderr)
    except CommandError as error:
        error.stdout = stdout.getvalue()
        raise
    return stdout.getvalue()


def critical_events():
    """Return the critical audit events written so far."""
    return AuditLog.objects.filter(severity="critical").order_by("created_at")


@pytest.fixture
def artefacts(db):
    """Four artefacts across two engagements: live, soft-deleted and superseded ones."""
    live = ArtefactFactory()
    deleted = ArtefactFactory(engagement=live.engagement, content=b"a,b\n1,2\n")
    deleted.soft_delete()
    deleted.save()
    superseded = ArtefactFactory(engagement=live.engagement, content=b"a,b\n3,4\n")
    superseded.supersede()
    superseded.save()
    other = ArtefactFactory(content=b"a,b\n5,6\n")
    return {"live": live, "deleted": deleted, "superseded": superseded, "other": other}


def corrupt(media_root, artefact):
    """Flip one bit of the artefact's stored bytes."""
    path = media_root / artefact.file.name
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_clean_set_passes_with_a_summary(artefacts, capsys):
    output = run()
    assert "Checked 4 artefact files: 4 ok, 0 missing, 0 corrupted." in output
    assert not critical_events().exists()
    # stdout is not a terminal here: no progress bar anywhere.
    assert capsys.readouterr().err == ""


def test_missing_and_corrupted_files_are_reported_audited_and_fail(artefacts, media_root):
    missing, corrupted = artefacts["deleted"], artefacts["superseded"]
    (media_root / missing.file.name).unlink()
    corrupt(media_root, corrupted)

    with pytest.raises(CommandError) as failed:
        run("--no-progress")

    assert str(failed.value) == (
        "2 artefact file(s) failed the integrity check (1 missing, 1 corrupted); "
        "critical audit events were written."
    )
    output = failed.value.stdout
    assert "Checked 4 artefact files: 2 ok, 1 missing, 1 corrupted." in output
    missing_line = next(line for line in output.splitlines() if line.startswith("MISSING"))
    assert str(missing.pk) in missing_line
    assert str(missing.engagement_id) in missing_line
    assert missing.name in missing_line
    assert "deleted" in missing_line
    assert missing.content_hash in missing_line
    assert "found no file" in missing_line
    corrupted_line = next(line for line in output.splitlines() if line.startswith("CORRUPTED"))
    assert str(corrupted.pk) in corrupted_line
    assert "superseded" in corrupted_line
    actual = re.search(r"found SHA-256 ([0-9a-f]{64})", corrupted_line).group(1)
    assert actual != corrupted.content_hash
    assert corrupted.content_hash in corrupted_line

    events = {event.resource_id: event for event in critical_events()}
    assert set(events) == {missing.pk, corrupted.pk}
    for artefact, status in ((missing, "missing"), (corrupted, "corrupted")):
        event = events[artefact.pk]
        assert event.action == "artefact_access"
        assert event.resource_type == "artefact"
        assert event.engagement_id == artefact.engagement_id
        assert event.metadata["integrity_check"] == status
        assert event.metadata["source"] == "verify_artefacts"
        assert event.metadata["expected_hash"] == artefact.content_hash
    assert events[corrupted.pk].metadata["actual_hash"] == actual


def test_engagement_scope_checks_only_that_engagement(artefacts, media_root):
    corrupt(media_root, artefacts["other"])
    engagement_id = artefacts["live"].engagement_id

    output = run("--engagement", str(engagement_id))

    assert f"Checked 3 artefact files of engagement {engagement_id}: 3 ok" in output
    assert not critical_events().exists()

    with pytest.raises(CommandError, match="1 artefact file"):
        run("--engagement", str(artefacts["other"].engagement_id))
    assert critical_events().get().resource_id == artefacts["other"].pk


def test_an_engagement_without_artefacts_is_clean():
    engagement = EngagementFactory()
    assert "Checked 0 artefact files" in run("--engagement", str(engagement.pk))


def test_an_unknown_engagement_is_refused(db):
    engagement_id = uuid.uuid4()
    with pytest.raises(CommandError, match=f"No engagement with id {engagement_id}"):
        run("--engagement", str(engagement_id))


def test_a_malformed_engagement_id_is_refused(db):
    with pytest.raises(CommandError, match="invalid UUID value"):
        run("--engagement", "not-a-uuid")


def test_rows_are_streamed_in_chunks(artefacts, django_assert_max_num_queries):
    # Few queries whatever the number of rows: one count, then chunked reads.
    with django_assert_max_num_queries(6):
        run("--chunk-size", "2")
    assert Artefact.all_objects.count() == 4


def test_the_progress_bar_shows_on_a_terminal_unless_hidden(artefacts, monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(verify_artefacts.sys, "stderr", io.StringIO())
    call_command("verify_artefacts", stdout=Terminal())
    assert "4/4" in verify_artefacts.sys.stderr.getvalue()

    monkeypatch.setattr(verify_artefacts.sys, "stderr", io.StringIO())
    call_command("verify_artefacts", "--no-progress", stdout=Terminal())
    assert verify_artefacts.sys.stderr.getvalue() == ""
