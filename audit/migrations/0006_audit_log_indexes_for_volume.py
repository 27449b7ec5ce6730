"""Index the audit log for filters at volume (issue 18): (created_at, sequence),
(user, sequence) and (action, sequence) replace the single-column indexes they start
with, so a filtered page of the newest entries is read from one index.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from audit.triggers import install_append_only_triggers, remove_append_only_triggers


def reinstall_append_only_triggers(apps, schema_editor):
    """Install the triggers again: SQLite rebuilt the table to alter it, dropping them."""
    remove_append_only_triggers(apps, schema_editor)
    install_append_only_triggers(apps, schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0005_audit_actions_for_professional_standards'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditlog',
            name='action',
            field=models.CharField(choices=[('login', 'Login'), ('logout', 'Logout'), ('password_change', 'Password change'), ('session_create', 'Session create'), ('session_delete', 'Session delete'), ('engagement_create', 'Engagement create'), ('engagement_update', 'Engagement update'), ('engagement_delete', 'Engagement delete'), ('engagement_archive', 'Engagement archive'), ('workflow_create', 'Workflow create'), ('workflow_update', 'Workflow update'), ('workflow_start', 'Workflow start'), ('workflow_complete', 'Workflow complete'), ('workflow_fail', 'Workflow fail'), ('workflow_cancel', 'Workflow cancel'), ('workflow_replay', 'Workflow replay'), ('artefact_create', 'Artefact create'), ('artefact_update', 'Artefact update'), ('artefact_access', 'Artefact access'), ('artefact_delete', 'Artefact delete'), ('approval_request', 'Approval request'), ('approval_approve', 'Approval approve'), ('approval_reject', 'Approval reject'), ('approval_revoke', 'Approval revoke'), ('approval_expire', 'Approval expire'), ('approval_update', 'Approval update'), ('review_point_raise', 'Review point raise'), ('review_point_respond', 'Review point respond'), ('review_point_resolve', 'Review point resolve'), ('review_point_reopen', 'Review point reopen'), ('data_reliance_record', 'Data reliance record'), ('data_reliance_update', 'Data reliance update'), ('disclosure_checklist_update', 'Disclosure checklist update'), ('disclosure_checklist_complete', 'Disclosure checklist complete'), ('agent_invoke', 'Agent invoke'), ('agent_complete', 'Agent complete'), ('agent_error', 'Agent error'), ('data_export', 'Data export'), ('data_import', 'Data import'), ('settings_change', 'Settings change'), ('permission_change', 'Permission change')], max_length=50),
        ),
        migrations.AlterField(
            model_name='auditlog',
            name='created_at',
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name='auditlog',
            name='engagement_id',
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='auditlog',
            name='resource_type',
            field=models.CharField(max_length=100),
        ),
        migrations.AlterField(
            model_name='auditlog',
            name='user',
            field=models.ForeignKey(blank=True, db_index=False, help_text='Acting user; empty for system actions.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='audit_events', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='auditlog',
            index=models.Index(fields=['created_at', 'sequence'], name='audit_time_sequence_idx'),
        ),
        migrations.AddIndex(
            model_name='auditlog',
            index=models.Index(fields=['user', 'sequence'], name='audit_user_sequence_idx'),
        ),
        migrations.AddIndex(
            model_name='auditlog',
            index=models.Index(fields=['action', 'sequence'], name='audit_action_sequence_idx'),
        ),
            # Last, after the table rebuilds SQLite makes above.
        migrations.RunPython(
            reinstall_append_only_triggers, migrations.RunPython.noop, elidable=False
        ),
    ]
