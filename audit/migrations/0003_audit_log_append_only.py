"""Make the chain fields required and unique, and let the database refuse changes.

Unique `sequence` and `previous_hash` make a forked chain impossible at the
database; the triggers refuse UPDATE, DELETE and TRUNCATE (see audit.triggers).
"""

from django.db import migrations, models

from audit.triggers import install_append_only_triggers, remove_append_only_triggers


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0002_audit_log_hash_chain"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditlog",
            name="sequence",
            field=models.BigIntegerField(editable=False, help_text="Position in the hash chain: 1, 2, 3, … no gaps.", unique=True),
        ),
        migrations.AlterField(
            model_name="auditlog",
            name="previous_hash",
            field=models.CharField(editable=False, help_text="entry_hash of the entry before.", max_length=64, unique=True),
        ),
        migrations.AlterField(
            model_name="auditlog",
            name="entry_hash",
            field=models.CharField(editable=False, help_text="SHA-256 of this entry's canonical form, previous hash included.", max_length=64, unique=True),
        ),
        migrations.AddConstraint(
            model_name="auditlog",
            constraint=models.CheckConstraint(condition=models.Q(("sequence__gte", 1)), name="audit_log_sequence_positive"),
        ),
        # Last, after any table rebuild above (SQLite rebuilds tables to alter them,
        # which would drop triggers created earlier).
        migrations.RunPython(install_append_only_triggers, remove_append_only_triggers, elidable=False),
    ]
