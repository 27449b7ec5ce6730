"""Choices of the engagements app and the engagement lifecycle."""

from django.db import models


class EngagementType(models.TextChoices):
    RESERVING = "reserving", "Reserving"
    IFRS17 = "ifrs17", "IFRS 17"
    ALM = "alm", "ALM"
    REINSURANCE = "reinsurance", "Reinsurance"
    PRICING = "pricing", "Pricing"
    VALUATION = "valuation", "Valuation"
    REVIEW = "review", "Review"
    ADVISORY = "advisory", "Advisory"
    OTHER = "other", "Other"


class EngagementStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    ON_HOLD = "on_hold", "On hold"
    COMPLETED = "completed", "Completed"
    ARCHIVED = "archived", "Archived"
    CANCELLED = "cancelled", "Cancelled"


class TeamRole(models.TextChoices):
    LEAD = "lead", "Lead actuary"
    ACTUARY = "actuary", "Actuary"
    REVIEWER = "reviewer", "Reviewer"
    OBSERVER = "observer", "Observer"


_S = EngagementStatus
# move -> (states it may start from, state it ends in)
ENGAGEMENT_TRANSITIONS = {
    "activate": ({_S.DRAFT, _S.ON_HOLD}, _S.ACTIVE),
    "hold": ({_S.ACTIVE}, _S.ON_HOLD),
    "complete": ({_S.ACTIVE}, _S.COMPLETED),
    "archive": ({_S.COMPLETED, _S.CANCELLED}, _S.ARCHIVED),
    "cancel": ({_S.DRAFT, _S.ACTIVE, _S.ON_HOLD}, _S.CANCELLED),
}

EDITABLE_STATUSES = frozenset({_S.DRAFT, _S.ACTIVE})
# A completed or archived engagement accepts no new runs, artefacts or approvals.
CLOSED_STATUSES = frozenset({_S.COMPLETED, _S.ARCHIVED})
