from django.apps import AppConfig
from django.conf import settings


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit trail and maintenance"

    def ready(self):
        from records import services as record_services

        from . import services, signals

        # The foundation's move/record helpers append their events through this hook.
        record_services.audit_record.register(services.audit_record)
        signals.connect_receivers()
        if getattr(settings, "AUDIT_LOG_ALLOW_TEST_FLUSH", False):
            from .triggers import allow_flush_in_tests

            allow_flush_in_tests()
