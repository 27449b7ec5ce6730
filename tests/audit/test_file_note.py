"""The engagement timeline as a file note (issue 17), on the demo data: one sentence per
business event with people and objects by name, the history rows folded under the event
that caused them, noise hidden unless asked for, filters, pages and a Word export."""

import datetime
import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from audit.file_note import FileNoteFilter, engagement_file_note
from audit.models import AuditLog
from engagements.models import Engagement

pytestmark = pytest.mark.django_db

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def acme():
    call_command("load_demo", force=True)
    return Engagement.objects.get(client_code="ACME")


def note_url(engagement):
    return reverse("admin:audit_auditlog_timeline", args=(engagement.pk,))


def login(client, username):
    client.force_login(get_user_model().objects.get(username=username))
    return client


def test_an_approval_is_one_sentence_with_names_qualification_and_notes(acme):
    entries = engagement_file_note(acme)
    approved = [e for e in entries if " approved the " in e.sentence]
    assert len(approved) == 1
    [entry] = approved
    assert entry.sentence.startswith("Bob Castellano (FCAS) approved the workflow approval of run ")
    assert entry.sentence.endswith(": ‘Demo sign-off: chain ladder reviewed against Mack (1993).’")
    # Its history row is folded under it, users named, not shown again as a line of its own.
    changes = {c.label: (c.old, c.new) for c in entry.changes}
    assert changes["Status"] == ("Pending", "Approved")
    assert changes["Approver"] == ("—", "Bob Castellano")


def test_no_event_is_said_twice(acme):
    entries = engagement_file_note(acme, note_filter=FileNoteFilter(kinds=frozenset({"runs"})))
    created = [
        e for e in entries if "created workflow run “Chain ladder with Mack: RAA" in e.sentence
    ]
    assert len(created) == 1
    sentences = [(e.at, e.sentence) for e in engagement_file_note(acme)]
    assert len(sentences) == len(set(sentences))
    for entry in engagement_file_note(acme):
        assert not UUID.search(entry.sentence)
        assert "{" not in entry.sentence and "_" not in entry.sentence.split("“")[0]


def test_file_reads_and_chat_are_hidden_unless_asked_for(client, acme):
    page = login(client, "alice").get(note_url(acme))
    assert page.status_code == 200
    assert {entry.kind for entry in page.context["entries"]}.isdisjoint({"access", "chat"})
    assert "read the file of" not in page.content.decode()
    shown = client.get(f"{note_url(acme)}?kind=access&kind=chat")
    kinds = {entry.kind for entry in shown.context["entries"]}
    assert kinds == {"access", "chat"}
    assert "Alice Fairweather read the file of artefact" in shown.content.decode()


def test_filters_by_person_and_date(client, acme):
    bob = get_user_model().objects.get(username="bob")
    page = login(client, "alice").get(f"{note_url(acme)}?person={bob.pk}")
    assert page.context["entries"] and all(e.user == bob for e in page.context["entries"])
    assert "Bob Castellano" in dict(page.context["form"].fields["person"].choices).values()
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    none = client.get(f"{note_url(acme)}?until={yesterday.isoformat()}")
    assert list(none.context["entries"]) == []


def test_the_word_export_holds_the_same_sentences(client, acme):
    from docx import Document

    response = login(client, "alice").get(f"{note_url(acme)}?export=docx")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert response["Content-Disposition"].endswith('.docx"')
    document = Document(io.BytesIO(response.content))
    text = "\n".join(paragraph.text for paragraph in document.paragraphs)
    assert "File note: ACME · FY2025 reserve review" in text
    assert "Bob Castellano (FCAS) approved the workflow approval of run" in text
    assert " UTC" in text


def test_the_note_prints(client, acme):
    html = login(client, "alice").get(note_url(acme)).content.decode()
    assert "@media print" in html


def test_the_note_costs_a_bounded_number_of_queries(client, acme, django_assert_max_num_queries):
    login(client, "alice")
    with django_assert_max_num_queries(40):
        assert client.get(note_url(acme)).status_code == 200


def test_the_audit_log_names_resources_and_engagements(client, acme):
    response = login(client, "admin").get(reverse("admin:audit_auditlog_changelist"))
    html = response.content.decode()
    event = AuditLog.objects.filter(resource_type="workflowrun", engagement_id=acme.pk).first()
    run_url = reverse("admin:workflows_workflowrun_change", args=(event.resource_id,))
    assert run_url in html
    assert f">{acme}</a>" in html
