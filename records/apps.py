from django.apps import AppConfig


class RecordsConfig(AppConfig):
    """The foundation app: abstract models and shared bases only (no tables of its own)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "records"
    verbose_name = "Records (foundation)"

    def ready(self):
        # Read-only JSON and ids read the same on every admin page (records.admin.readable).
        from records.admin.readable import install

        install()
