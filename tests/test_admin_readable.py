"""Every admin page of the demo data reads as people read (issue 17).

Renders the changelist and the change page of every registered model, the dashboard
and each engagement's file note as the superuser, and looks at the text a person sees:
outside code blocks, scripts, styles and attribute values (link targets and ids), there
is no UUID, no raw JSON (a Python or JSON mapping dump) and no snake_case code of a
choice (an audit action, a status, a workflow type).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from engagements.models import Engagement

pytestmark = pytest.mark.django_db

UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
JSON_DUMP = re.compile(r"[{\[]\s*[\"'][^\"']{1,60}[\"']\s*:")
# Text inside these elements is code, or not shown as text.
# A textarea holds what a person edits (a JSON field in its editor), not text they read.
NOT_TEXT = {"script", "style", "code", "pre", "template", "noscript", "svg", "title", "textarea"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
# Pages left out, with the reason (none now: the workflow run page reads as people read).
EXCLUDED: dict[re.Pattern, str] = {}
# Change pages looked at per model (the demo holds a few of each; the audit log many).
PAGES_PER_MODEL = 10


class VisibleText(HTMLParser):
    """The text of a page a person reads: not code, scripts, styles or attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skipping = 0
        self.stack: list[str] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag in NOT_TEXT:
            self.skipping += 1

    def handle_endtag(self, tag):
        if tag in VOID or tag not in self.stack:
            return
        while self.stack:
            top = self.stack.pop()
            if top in NOT_TEXT:
                self.skipping -= 1
            if top == tag:
                break

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)

    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return parser.text()


def choice_codes() -> set[str]:
    """Return every snake_case value of a model field's choices (actions, statuses, types)."""
    codes = set()
    for model in apps.get_models():
        for field in model._meta.get_fields():
            for value, _label in getattr(field, "flatchoices", None) or ():
                if isinstance(value, str) and "_" in value:
                    codes.add(value)
    return codes


def problems_in(text: str, codes: set[str]) -> list[str]:
    found = [f"UUID {m.group(0)}" for m in UUID.finditer(text)]
    found += [
        f"raw JSON near {text[max(m.start() - 40, 0) : m.end() + 40]!r}"
        for m in JSON_DUMP.finditer(text)
    ]
    words = set(re.findall(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", text))
    found += [f"code {code}" for code in sorted(words & codes)]
    return found


def admin_pages() -> list[str]:
    """Return the URL of every changelist and the change page of its first object."""
    urls = [reverse("admin:index")]
    for model, model_admin in admin.site._registry.items():
        info = model._meta.app_label, model._meta.model_name
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        for obj in model_admin.get_queryset(_superuser_request()).order_by("pk")[:PAGES_PER_MODEL]:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=(obj.pk,)))
    for engagement in Engagement.objects.all():
        urls.append(reverse("admin:audit_auditlog_timeline", args=(engagement.pk,)))
    return urls


def _superuser_request():
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = get_user_model().objects.get(username="admin")
    return request


def test_every_admin_page_of_the_demo_reads_as_people_read(client):
    call_command("load_demo", force=True)
    client.force_login(get_user_model().objects.get(username="admin"))
    codes = choice_codes()
    report = {}
    for url in admin_pages():
        if any(pattern.match(url) for pattern in EXCLUDED):
            continue
        response = client.get(url)
        assert response.status_code == 200, url
        problems = problems_in(visible_text(response.content.decode()), codes)
        if problems:
            report[url] = problems[:5]
    for url, problems in report.items():
        print(url, problems)
    assert report == {}


def test_the_checker_finds_what_it_looks_for():
    html = (
        "<p>approver: 3 → {'checked_on': '2026'} ref 44a8355f-2f4c-4ae9-ae3d-e3835f9966f2 "
        "approval_approve</p><code>44a8355f-2f4c-4ae9-ae3d-e3835f9966f2 {'a': 1}</code>"
        '<a href="/x/44a8355f-2f4c-4ae9-ae3d-e3835f9966f2/">Run</a>'
    )
    problems = problems_in(visible_text(html), {"approval_approve"})
    assert len(problems) == 3
