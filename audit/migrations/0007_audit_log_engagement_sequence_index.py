"""Index the audit log's entries of an engagement in chain order (issue 18): the API's
list for a user who sees only their engagements reads each one's newest page from it.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0006_audit_log_indexes_for_volume'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='auditlog',
            index=models.Index(fields=['engagement_id', 'sequence'], name='audit_engagement_sequence_idx'),
        ),
    ]
