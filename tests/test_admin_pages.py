"""Every registered model's admin pages open for a superuser (changelist, add, change, history).

Review points are raised from their approval's page and disclosure checklists are pre-filled
from their engagement's page: their admins have no add page.
"""

import pytest
from django.contrib import admin
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db

OUR_APPS = {"engagements", "workflows", "artefacts", "approvals", "audit", "conversations"}

FACTORIES = {
    "engagements.engagement": factories.EngagementFactory,
    "engagements.engagementmember": factories.EngagementMemberFactory,
    "workflows.workflowrun": factories.WorkflowRunFactory,
    "artefacts.artefact": factories.ArtefactFactory,
    "approvals.approval": factories.ApprovalFactory,
    "approvals.professionalqualification": factories.ProfessionalQualificationFactory,
    "approvals.reviewpoint": factories.ReviewPointFactory,
    "approvals.disclosurechecklist": factories.DisclosureChecklistFactory,
    "artefacts.datareliance": factories.DataRelianceFactory,
    "audit.auditlog": factories.AuditLogFactory,
    "audit.backup": factories.BackupFactory,
    "audit.recovery": factories.RecoveryFactory,
    "conversations.session": factories.SessionFactory,
    "conversations.chatmessage": factories.ChatMessageFactory,
}

REGISTERED = sorted(
    model._meta.label_lower for model in admin.site._registry if model._meta.app_label in OUR_APPS
)
READ_ONLY = {"audit.auditlog"}
# Created only from another page (see the module docstring).
NO_ADD_PAGE = {"approvals.reviewpoint", "approvals.disclosurechecklist"}


def test_every_domain_model_is_registered_and_has_a_factory():
    assert set(REGISTERED) == set(FACTORIES)


def _url(label, page, *args):
    app_label, model_name = label.split(".")
    return reverse(f"admin:{app_label}_{model_name}_{page}", args=args)


@pytest.mark.parametrize("label", REGISTERED)
def test_changelist_add_change_and_history_pages_open(client, superuser, label):
    obj = FACTORIES[label]()
    client.force_login(superuser)
    assert client.get(_url(label, "changelist")).status_code == 200
    assert client.get(_url(label, "changelist"), {"q": "x"}).status_code == 200
    change = client.get(_url(label, "change", obj.pk))
    assert change.status_code == 200
    add = client.get(_url(label, "add"))
    assert add.status_code == (403 if label in READ_ONLY | NO_ADD_PAGE else 200)
    if label not in READ_ONLY:
        assert client.get(_url(label, "history", obj.pk)).status_code == 200


def test_audit_log_is_read_only_for_superusers(client, superuser):
    entry = factories.AuditLogFactory()
    client.force_login(superuser)
    assert client.get(_url("audit.auditlog", "add")).status_code == 403
    assert client.get(_url("audit.auditlog", "delete", entry.pk)).status_code == 403
    response = client.post(_url("audit.auditlog", "change", entry.pk), {"description": "edited"})
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.description == "Engagement updated"


def test_admin_edit_records_the_user_in_history(client, superuser):
    engagement = factories.EngagementFactory()
    client.force_login(superuser)
    page = client.get(_url("engagements.engagement", "change", engagement.pk))
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {
        name: (value if value is not None else "")
        for name, value in form.initial.items()
        if name in form.fields
    }
    data.update({"name": "Renamed in the admin", "config": "{}", "metadata": "{}"})
    for prefix in ("team", "workflow_runs", "artefacts", "approvals"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = client.post(_url("engagements.engagement", "change", engagement.pk), data)
    assert response.status_code == 302, response.content[:2000]
    engagement.refresh_from_db()
    assert engagement.name == "Renamed in the admin"
    assert engagement.updated_by == superuser
    assert engagement.history.latest().history_user == superuser
