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
