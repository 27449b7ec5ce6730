"""Choices of the workflows app and the workflow run lifecycle."""

from django.db import models


class WorkflowType(models.TextChoices):
    # data
    DATA_INGESTION = "data_ingestion", "Data ingestion"
    DATA_VALIDATION = "data_validation", "Data validation"
    DATA_TRANSFORMATION = "data_transformation", "Data transformation"
    # reserving
    RESERVE_CALCULATION = "reserve_calculation", "Reserve calculation"
    TRIANGLE_ANALYSIS = "triangle_analysis", "Triangle analysis"
    IBNR_ESTIMATION = "ibnr_estimation", "IBNR estimation"
    # IFRS 17
    IFRS17_MEASUREMENT = "ifrs17_measurement", "IFRS 17 measurement"
    CSM_CALCULATION = "csm_calculation", "CSM calculation"
    COHORT_GROUPING = "cohort_grouping", "Cohort grouping"
    # ALM
    ALM_ANALYSIS = "alm_analysis", "ALM analysis"
    CASHFLOW_PROJECTION = "cashflow_projection", "Cash-flow projection"
    DURATION_MATCHING = "duration_matching", "Duration matching"
    # reinsurance
    REINSURANCE_ANALYSIS = "reinsurance_analysis", "Reinsurance analysis"
    TREATY_CALCULATION = "treaty_calculation", "Treaty calculation"
    RECOVERIES_CALCULATION = "recoveries_calculation", "Recoveries calculation"
    # reporting
    REPORT_GENERATION = "report_generation", "Report generation"
    DASHBOARD_UPDATE = "dashboard_update", "Dashboard update"
    # review
    QUALITY_CHECK = "quality_check", "Quality check"
    PEER_REVIEW = "peer_review", "Peer review"
    SIGN_OFF = "sign_off", "Sign-off"
    CUSTOM = "custom", "Custom"


class WorkflowStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    WAITING_APPROVAL = "waiting_approval", "Waiting for approval"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


_S = WorkflowStatus
TERMINAL_STATUSES = frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELLED})
NON_TERMINAL_STATUSES = frozenset(set(_S) - TERMINAL_STATUSES)
# Runs in these states keep an engagement from being completed.
OPEN_STATUSES = frozenset({_S.PENDING, _S.QUEUED, _S.RUNNING, _S.PAUSED, _S.WAITING_APPROVAL})

# move -> (states it may start from, state it ends in)
WORKFLOW_RUN_TRANSITIONS = {
    "queue": ({_S.PENDING}, _S.QUEUED),
    "start": ({_S.PENDING, _S.QUEUED}, _S.RUNNING),
    "pause": ({_S.RUNNING}, _S.PAUSED),
    "resume": ({_S.PAUSED}, _S.RUNNING),
    "await_approval": ({_S.RUNNING}, _S.WAITING_APPROVAL),
    "complete": ({_S.RUNNING, _S.WAITING_APPROVAL}, _S.COMPLETED),
    "fail": (NON_TERMINAL_STATUSES, _S.FAILED),
    "cancel": (NON_TERMINAL_STATUSES, _S.CANCELLED),
}
