from django.apps import AppConfig
from django.db.models.signals import post_save

# The notifications app's records belong to people (and endpoints), not to one
# engagement: an engagement backup leaves them out (a full backup holds them).
NOT_ENGAGEMENT_SCOPED = {
    "notifications.notification": "a message to one person; it names the engagement by id",
    "notifications.notificationpreference": "belongs to a person, not an engagement",
    "notifications.emaildelivery": "the record of an email to a person",
    "notifications.webhookendpoint": "another system's subscription, set by superusers",
    "notifications.webhookdelivery": "the record of a delivery to an endpoint",
}


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"

    def ready(self):
        from records import scoping

        from .announcing import audit_event_saved

        # Fed by the audit trail: every business event is an AuditLog row saved in the
        # transaction of the change (the audit app knows nothing of notifications).
        post_save.connect(
            audit_event_saved, sender="audit.AuditLog", dispatch_uid="notifications.audit_event"
        )
        for label, reason in NOT_ENGAGEMENT_SCOPED.items():
            scoping.register_outside_engagements(label, reason=reason)
