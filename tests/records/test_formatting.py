"""The one way to show things (records.formatting, records.admin.readable; issue 17)."""

import datetime

import pytest
from django.db import models
from django.utils import timezone

from notifications.messages import when as notification_when
from records.admin.readable import display_for_field
from records.formatting import (
    format_date,
    format_datetime,
    format_file_size,
    format_number,
    humanize_code,
    person,
    readable_value,
)


def test_a_moment_names_its_time_zone_and_a_day_reads_as_words(settings):
    moment = datetime.datetime(2026, 12, 5, 6, 33, tzinfo=datetime.UTC)
    assert format_datetime(moment) == "5 December 2026 06:33 UTC"
    assert format_datetime("2026-12-05T06:33:00Z") == "5 December 2026 06:33 UTC"
    assert format_date(datetime.date(2026, 12, 5)) == "5 December 2026"
    assert format_datetime(None) == "—"
    # Notifications (emails, webhooks) spell moments the same way.
    assert format_datetime(moment) == notification_when(moment)
    assert format_date(datetime.date(2026, 12, 5)) == notification_when(datetime.date(2026, 12, 5))
    with timezone.override("Europe/London"):
        summer = datetime.datetime(2026, 7, 1, 12, 0, tzinfo=datetime.UTC)
        assert format_datetime(summer) == "1 July 2026 13:00 BST"


@pytest.mark.parametrize(
    ("size", "text"),
    [(1, "1 byte"), (777, "777 bytes"), (12_800, "12.5 KB"), (3 * 1024**2, "3.0 MB")],
)
def test_file_sizes_read_as_people_read_them(size, text):
    assert format_file_size(size) == text


def test_numbers_codes_people_and_json():
    assert format_number(18680855.61) == "18,680,855.61"
    assert format_number(52135, 0) == "52,135"
    assert humanize_code("reserve_calculation") == "Reserve calculation"
    assert humanize_code("mack_se") == "Mack s.e."
    assert humanize_code("Already words") == "Already words"
    assert readable_value({"checked_on": "2026-12-05", "designations": ["FIA", "FCAS"]}) == (
        "Checked on: 2026-12-05; Designations: FIA, FCAS"
    )
    assert person(None) == "the system"


@pytest.mark.django_db
def test_people_by_name_with_their_qualifications(django_user_model):
    bob = django_user_model.objects.create(username="bob", first_name="Bob", last_name="Smith")
    assert person(bob, qualifications=("FCAS",)) == "Bob Smith (FCAS)"
    assert person(django_user_model.objects.create(username="dave")) == "dave"


def test_the_admin_shows_json_as_a_list_ids_as_code_states_as_chips():
    metadata = models.JSONField(name="metadata")
    html = str(display_for_field({"workflow_type": "reserve_calculation"}, metadata, "-"))
    assert html == '<ul class="workspace-list"><li>Workflow type: Reserve calculation</li></ul>'
    ident = models.UUIDField(name="id")
    value = "44a8355f-2f4c-4ae9-ae3d-e3835f9966f2"
    assert str(display_for_field(value, ident, "-")) == f"<code>{value}</code>"
    status = models.CharField(name="status", choices=[("waiting_approval", "Waiting for approval")])
    assert str(display_for_field("waiting_approval", status, "-")) == (
        '<span class="workspace-badge status-waiting_approval">Waiting for approval</span>'
    )
    size = models.BigIntegerField(name="file_size")
    assert display_for_field(12_800, size, "-") == "12.5 KB"
