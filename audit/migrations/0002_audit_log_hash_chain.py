"""Add the hash chain to the AuditLog and number the entries already stored.

The chain fields start nullable, existing entries are chained in the order they
were written, and 0003 makes the fields required and unique. Two migrations, so
the row updates are committed before PostgreSQL alters the table again.
"""

from django.db import migrations, models

from audit.chain import GENESIS_HASH, HASHED_FIELDS, JSON_FIELDS, compute_entry_hash, normalize_json


def chain_existing_entries(apps, schema_editor):
    AuditLog = apps.get_model("audit", "AuditLog")
    AuditChainHead = apps.get_model("audit", "AuditChainHead")
    db = schema_editor.connection.alias
    sequence, previous_hash = 0, GENESIS_HASH
    entries = AuditLog.objects.using(db).order_by("created_at", "id")
    for entry in entries.iterator(chunk_size=2000):
        sequence += 1
        entry.sequence = sequence
        entry.previous_hash = previous_hash
        for name in JSON_FIELDS:
            setattr(entry, name, normalize_json(getattr(entry, name)))
        entry.entry_hash = compute_entry_hash({name: getattr(entry, name) for name in HASHED_FIELDS})
        AuditLog.objects.using(db).filter(pk=entry.pk).update(
            sequence=entry.sequence,
            previous_hash=entry.previous_hash,
            entry_hash=entry.entry_hash,
            **{name: getattr(entry, name) for name in JSON_FIELDS},
        )
        previous_hash = entry.entry_hash
    AuditChainHead.objects.using(db).update_or_create(
        pk=1, defaults={"sequence": sequence, "entry_hash": previous_hash}
    )


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, editable=False, primary_key=True, serialize=False)),
                ("sequence", models.BigIntegerField(default=0)),
                ("entry_hash", models.CharField(default="0000000000000000000000000000000000000000000000000000000000000000", max_length=64)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "audit chain head",
                "constraints": [models.CheckConstraint(condition=models.Q(("id", 1)), name="audit_chain_head_singleton")],
            },
        ),
        migrations.AlterModelOptions(
            name="auditlog",
            options={
                "base_manager_name": "objects",
                "ordering": ("-sequence",),
                "verbose_name": "audit log entry",
                "verbose_name_plural": "audit log",
            },
        ),
        migrations.AddField(
            model_name="auditlog",
            name="sequence",
            field=models.BigIntegerField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="auditlog",
            name="previous_hash",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="auditlog",
            name="entry_hash",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.RunPython(chain_existing_entries, migrations.RunPython.noop, elidable=False),
    ]
