"""Routes of the audit API, registered on the one router in config/api_router.py."""

from .views import AuditLogViewSet, BackupViewSet, RecoveryViewSet

# (URL prefix, viewset, basename)
routes = (
    ("audit-logs", AuditLogViewSet, "audit-log"),
    ("backups", BackupViewSet, "backup"),
    ("recoveries", RecoveryViewSet, "recovery"),
)
