"""Choices of the approvals app and the approval lifecycle."""

from django.db import models


class ApprovalType(models.TextChoices):
    ARTEFACT_REVIEW = "artefact_review", "Artefact review"
    REPORT_SIGN_OFF = "report_sign_off", "Report sign-off"
    DATA_VALIDATION = "data_validation", "Data validation"
    WORKFLOW_APPROVAL = "workflow_approval", "Workflow approval"
    METHODOLOGY_APPROVAL = "methodology_approval", "Methodology approval"
    ACTUARIAL_SIGN_OFF = "actuarial_sign_off", "Actuarial sign-off"
    PEER_REVIEW = "peer_review", "Peer review"
    FINAL_SIGN_OFF = "final_sign_off", "Final sign-off"
    RELEASE_APPROVAL = "release_approval", "Release approval"
    EXCEPTION_APPROVAL = "exception_approval", "Exception approval"


# Sign-offs need an approver holding a professional qualification valid on the decision date.
SIGN_OFF_TYPES = frozenset(
    {
        ApprovalType.ACTUARIAL_SIGN_OFF,
        ApprovalType.REPORT_SIGN_OFF,
        ApprovalType.FINAL_SIGN_OFF,
        ApprovalType.PEER_REVIEW,
    }
)


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class Designation(models.TextChoices):
    FIA = "FIA", "FIA — Fellow of the Institute and Faculty of Actuaries"
    FFA = "FFA", "FFA — Fellow of the Faculty of Actuaries"
    FSA = "FSA", "FSA — Fellow of the Society of Actuaries"
    FCAS = "FCAS", "FCAS — Fellow of the Casualty Actuarial Society"
    FIAA = "FIAA", "FIAA — Fellow of the Institute of Actuaries of Australia"
    FCIA = "FCIA", "FCIA — Fellow of the Canadian Institute of Actuaries"
    MAAA = "MAAA", "MAAA — Member of the American Academy of Actuaries"
    FASSA = "FASSA", "FASSA — Fellow of the Actuarial Society of South Africa"
    DAV = "DAV", "DAV — Aktuar DAV"
    IA = "IA", "IA — Institut des actuaires"
    OTHER = "other", "Other"


_S = ApprovalStatus
# move -> (states it may start from, state it ends in)
APPROVAL_TRANSITIONS = {
    "approve": ({_S.PENDING}, _S.APPROVED),
    "reject": ({_S.PENDING}, _S.REJECTED),
    "revoke": ({_S.APPROVED}, _S.REVOKED),
    "expire": ({_S.PENDING}, _S.EXPIRED),
}


class ReviewPointSeverity(models.TextChoices):
    """How much a reviewer's challenge weighs (APS X2: challenges raised on record)."""

    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"
    CRITICAL = "critical", "Critical"


class ReviewPointStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESPONDED = "responded", "Responded"
    RESOLVED = "resolved", "Resolved"


_P = ReviewPointStatus
# move -> (states it may start from, state it ends in)
REVIEW_POINT_TRANSITIONS = {
    # The preparer answers the challenge.
    "respond": ({_P.OPEN}, _P.RESPONDED),
    # The reviewer accepts the answer.
    "resolve": ({_P.RESPONDED}, _P.RESOLVED),
    # The reviewer is not (or no longer) satisfied.
    "reopen": ({_P.RESPONDED, _P.RESOLVED}, _P.OPEN),
}
# Points in these states still stand between an approval and its approving.
UNRESOLVED_REVIEW_POINT_STATUSES = frozenset({_P.OPEN, _P.RESPONDED})


class DisclosureChecklistStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    COMPLETED = "completed", "Completed"


_D = DisclosureChecklistStatus
DISCLOSURE_CHECKLIST_TRANSITIONS = {
    "complete": ({_D.DRAFT}, _D.COMPLETED),
    # An edit of a completed (not yet frozen) checklist: it must be completed again.
    "revise": ({_D.COMPLETED}, _D.DRAFT),
}


class MemoFormat(models.TextChoices):
    """The formats a review memo is exported in."""

    MARKDOWN = "markdown", "Markdown"
    DOCX = "docx", "Word (DOCX)"
    BOTH = "both", "Markdown and Word"
