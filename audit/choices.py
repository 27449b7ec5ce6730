"""Choices of the audit app: audit actions and severities, backup and recovery states."""

from django.db import models


class AuditAction(models.TextChoices):
    """Business events. The spec's values are API contracts; the workflow/artefact/approval
    create-update-expire events were added so every service operation is on record, and
    the review point, data reliance, disclosure and replay events for the professional
    standards (issue 10)."""

    LOGIN = "login", "Login"
    LOGOUT = "logout", "Logout"
    PASSWORD_CHANGE = "password_change", "Password change"
    SESSION_CREATE = "session_create", "Session create"
    SESSION_DELETE = "session_delete", "Session delete"
    ENGAGEMENT_CREATE = "engagement_create", "Engagement create"
    ENGAGEMENT_UPDATE = "engagement_update", "Engagement update"
    ENGAGEMENT_DELETE = "engagement_delete", "Engagement delete"
    ENGAGEMENT_ARCHIVE = "engagement_archive", "Engagement archive"
    WORKFLOW_CREATE = "workflow_create", "Workflow create"
    WORKFLOW_UPDATE = "workflow_update", "Workflow update"
    WORKFLOW_START = "workflow_start", "Workflow start"
    WORKFLOW_COMPLETE = "workflow_complete", "Workflow complete"
    WORKFLOW_FAIL = "workflow_fail", "Workflow fail"
    WORKFLOW_CANCEL = "workflow_cancel", "Workflow cancel"
    WORKFLOW_REPLAY = "workflow_replay", "Workflow replay"
    ARTEFACT_CREATE = "artefact_create", "Artefact create"
    ARTEFACT_UPDATE = "artefact_update", "Artefact update"
    ARTEFACT_ACCESS = "artefact_access", "Artefact access"
    ARTEFACT_DELETE = "artefact_delete", "Artefact delete"
    APPROVAL_REQUEST = "approval_request", "Approval request"
    APPROVAL_APPROVE = "approval_approve", "Approval approve"
    APPROVAL_REJECT = "approval_reject", "Approval reject"
    APPROVAL_REVOKE = "approval_revoke", "Approval revoke"
    APPROVAL_EXPIRE = "approval_expire", "Approval expire"
    APPROVAL_UPDATE = "approval_update", "Approval update"
    REVIEW_POINT_RAISE = "review_point_raise", "Review point raise"
    REVIEW_POINT_RESPOND = "review_point_respond", "Review point respond"
    REVIEW_POINT_RESOLVE = "review_point_resolve", "Review point resolve"
    REVIEW_POINT_REOPEN = "review_point_reopen", "Review point reopen"
    DATA_RELIANCE_RECORD = "data_reliance_record", "Data reliance record"
    DATA_RELIANCE_UPDATE = "data_reliance_update", "Data reliance update"
    DISCLOSURE_CHECKLIST_UPDATE = "disclosure_checklist_update", "Disclosure checklist update"
    DISCLOSURE_CHECKLIST_COMPLETE = "disclosure_checklist_complete", "Disclosure checklist complete"
    AGENT_INVOKE = "agent_invoke", "Agent invoke"
    AGENT_COMPLETE = "agent_complete", "Agent complete"
    AGENT_ERROR = "agent_error", "Agent error"
    DATA_EXPORT = "data_export", "Data export"
    DATA_IMPORT = "data_import", "Data import"
    SETTINGS_CHANGE = "settings_change", "Settings change"
    PERMISSION_CHANGE = "permission_change", "Permission change"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


class BackupType(models.TextChoices):
    FULL = "full", "Full"
    INCREMENTAL = "incremental", "Incremental"
    DIFFERENTIAL = "differential", "Differential"
    AUDIT_LOGS = "audit_logs", "Audit logs"
    ARTEFACTS = "artefacts", "Artefacts"
    ENGAGEMENT = "engagement", "Engagement"


class BackupStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


class RecoveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"


_B = BackupStatus
# move -> (states it may start from, state it ends in)
BACKUP_TRANSITIONS = {
    "start": ({_B.PENDING}, _B.IN_PROGRESS),
    "complete": ({_B.IN_PROGRESS}, _B.COMPLETED),
    "fail": ({_B.PENDING, _B.IN_PROGRESS}, _B.FAILED),
    "cancel": ({_B.PENDING, _B.IN_PROGRESS}, _B.CANCELLED),
    "expire": ({_B.COMPLETED, _B.FAILED, _B.CANCELLED}, _B.EXPIRED),
}

_R = RecoveryStatus
RECOVERY_TRANSITIONS = {
    "start": ({_R.PENDING}, _R.IN_PROGRESS),
    "complete": ({_R.IN_PROGRESS}, _R.COMPLETED),
    "fail": ({_R.PENDING, _R.IN_PROGRESS}, _R.FAILED),
    # Only a completed restore changed anything; a failed one was rolled back by its
    # transaction already.
    "roll_back": ({_R.COMPLETED}, _R.ROLLED_BACK),
}
