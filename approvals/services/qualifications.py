"""Professional qualifications: certified by certifiers only, and which count for a decision."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet

from audit.choices import AuditAction
from audit.services import audit_record
from records.exceptions import NotAllowed
from records.formatting import format_date, format_datetime
from records.services import (
    apply_changes,
    changes,
    create_and_record,
    lock,
    save_with_history,
    snapshot,
    validate,
)
from records.transactions import audited_transaction

from ..choices import (
    SIGN_OFF_TYPES,
)
from ..models import Approval, ProfessionalQualification

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser
from ..errors import (
    APPROVAL_QUALIFICATION_REQUIRED,
    APPROVAL_QUALIFICATION_TOO_NEW,
    QUALIFICATION_FIXED_REASON,
    QUALIFICATION_NOT_ALLOWED,
    QUALIFICATION_OWN,
)

QUALIFICATION_FIELDS = frozenset(
    {"designation", "issuing_body", "membership_number", "valid_from", "valid_until"}
)
# Certifying qualifications is its own role (the Certifiers group), never an actuary's
# default: whoever certifies could otherwise make their own approver "qualified".
CERTIFY_QUALIFICATION_PERMISSION = "approvals.certify_professionalqualification"
CERTIFIERS_GROUP = "Certifiers"


@audited_transaction
def qualification_create(
    *,
    user: AbstractUser,
    designation: str,
    issuing_body: str,
    valid_from: datetime.date,
    actor: AbstractUser,
    membership_number: str = "",
    valid_until: datetime.date | None = None,
) -> ProfessionalQualification:
    """Certify a user's professional qualification: a certifier other than the holder."""
    _require_may_certify(actor, user)
    qualification = ProfessionalQualification(
        user=user,
        designation=designation,
        issuing_body=issuing_body,
        membership_number=membership_number,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    validate(qualification)
    create_and_record(
        qualification,
        actor=actor,
        action=AuditAction.PERMISSION_CHANGE,
        reason="Recorded",
        description=f"Qualification certified for {user}: {qualification}",
        fields=("user", *QUALIFICATION_FIELDS),
        metadata={"certification": "recorded", "holder": user.get_username()},
    )
    return qualification


@audited_transaction
def qualification_update(
    *, qualification: ProfessionalQualification, actor: AbstractUser, data: dict[str, Any]
) -> ProfessionalQualification:
    """Change a professional qualification (e.g. its end date): a certifier, not the holder."""
    qualification = lock(qualification)
    _require_may_certify(actor, qualification.user)
    before = snapshot(qualification)
    apply_changes(
        qualification, data=data, allowed=QUALIFICATION_FIELDS, reason=QUALIFICATION_FIXED_REASON
    )
    old, new = changes(before, snapshot(qualification))
    if not new:
        return qualification
    validate(qualification)
    save_with_history(qualification, actor=actor, reason="Edited: " + ", ".join(sorted(new)))
    audit_record(
        action=AuditAction.PERMISSION_CHANGE,
        resource=qualification,
        user=actor,
        description=f"Qualification certification changed for {qualification.user}: "
        f"{qualification}",
        old_value=old,
        new_value=new,
        metadata={"certification": "changed", "holder": qualification.user.get_username()},
    )
    return qualification


def qualifications_valid_on(
    *, user: AbstractUser, day: datetime.date
) -> QuerySet[ProfessionalQualification]:
    """Return the user's professional qualifications valid on `day`."""
    return ProfessionalQualification.objects.filter(user=user, valid_from__lte=day).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gte=day)
    )


def may_certify(user: AbstractUser) -> bool:
    """Return whether `user` may certify other people's professional qualifications."""
    return user.is_authenticated and user.has_perm(CERTIFY_QUALIFICATION_PERMISSION)


def _require_may_certify(actor: AbstractUser, user: AbstractUser) -> None:
    if not may_certify(actor):
        raise NotAllowed(
            QUALIFICATION_NOT_ALLOWED.format(
                user=actor,
                group=CERTIFIERS_GROUP,
                permission=CERTIFY_QUALIFICATION_PERMISSION.split(".")[-1],
            )
        )
    if actor.pk == user.pk:
        raise NotAllowed(QUALIFICATION_OWN.format(user=actor))


def _qualifications_counted(approval: Approval, actor: AbstractUser, *, day) -> list[dict]:
    """Return snapshots of the actor's qualifications that count for deciding `approval`.

    Only those valid on `day` and recorded (or last changed) before the approval was
    requested count: a certification made after the request, perhaps by the requester
    herself, must not qualify the approver she chose. A sign-off with none is refused.
    """
    valid = list(qualifications_valid_on(user=actor, day=day))
    counted = [q for q in valid if q.updated_at <= approval.requested_at]
    if approval.approval_type in SIGN_OFF_TYPES and not counted:
        approval_type = approval.get_approval_type_display().lower()
        if valid:
            raise NotAllowed(
                APPROVAL_QUALIFICATION_TOO_NEW.format(
                    user=actor,
                    approval=approval,
                    approval_type=approval_type,
                    day=format_date(day),
                    requested=format_datetime(approval.requested_at),
                    qualifications=", ".join(str(q) for q in valid),
                )
            )
        raise NotAllowed(
            APPROVAL_QUALIFICATION_REQUIRED.format(
                user=actor, approval=approval, approval_type=approval_type, day=format_date(day)
            )
        )
    return [q.snapshot() for q in counted]
