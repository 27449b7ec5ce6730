"""The disclosure checklist (ASOP 41) and the data reliance register a final sign-off needs.

Pre-filled from what the system holds, edited, completed by the lead actuary, and
frozen into the final sign-off request; a final sign-off also needs every input
data artefact in the data reliance register (ASOP 23).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from artefacts.selectors import engagement_input_data_without_reliance
from audit.choices import AuditAction
from audit.services import audit_record
from engagements.models import Engagement
from engagements.selectors import engagement_require_member, engagement_require_open
from records.exceptions import Conflict, InvalidInput, NotAllowed
from records.formatting import format_datetime
from records.services import (
    apply_changes,
    changes,
    lock,
    move_and_record,
    save_edit_and_record,
    save_with_history,
    snapshot,
    validate,
)
from records.transactions import audited_transaction

from .. import disclosures
from ..choices import (
    DisclosureChecklistStatus,
)
from ..models import DisclosureChecklist

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser
from ..errors import (
    CHECKLIST_FIELD_REQUIRED,
    CHECKLIST_FIXED_REASON,
    CHECKLIST_FROZEN,
    CHECKLIST_LEAD_ONLY,
    FINAL_SIGN_OFF_CHECKLIST_DRAFT,
    FINAL_SIGN_OFF_CHECKLIST_STALE,
    FINAL_SIGN_OFF_NO_CHECKLIST,
    FINAL_SIGN_OFF_NO_RELIANCE,
)

NEW_DISCLOSURES = "disclosures"

CHECKLIST_EDITABLE_FIELDS = frozenset(
    {"responsible_actuary", "information_date", "material_changes", "other_disclosures"}
)


@audited_transaction
def disclosure_checklist_prefill(
    *,
    actor: AbstractUser,
    engagement: Engagement | None = None,
    checklist: DisclosureChecklist | None = None,
) -> DisclosureChecklist:
    """Return the engagement's open disclosure checklist filled from what the system holds.

    Give the engagement, or its open `checklist` (refused if frozen). Creates the
    checklist if there is none (starting from the texts of the last frozen one, if
    any). Always refreshes the reliances (from the data reliance register) and the
    comparison with the previous engagement of the same client and type; fills the
    responsible actuary (the lead actuary), the information date and the material
    changes only where they are empty, so what people wrote is kept. A completed
    checklist that this changes goes back to draft.
    """
    engagement = lock(checklist.engagement if checklist is not None else engagement)
    engagement_require_member(engagement=engagement, user=actor, verb="prepare the disclosures of")
    if checklist is not None:
        _require_not_frozen(lock(checklist), verb="pre-fill")
    engagement_require_open(engagement=engagement, what=NEW_DISCLOSURES)
    checklist = _open_checklist(engagement)
    created = checklist is None
    if created:
        checklist = DisclosureChecklist(engagement=engagement)
        last = (
            DisclosureChecklist.objects.filter(engagement=engagement, frozen_at__isnull=False)
            .order_by("-frozen_at")
            .first()
        )
        if last is not None:
            checklist.other_disclosures = last.other_disclosures
    before = snapshot(checklist)
    previous, comparison, summary = disclosures.material_changes(engagement)
    checklist.reliances = disclosures.reliance_snapshot(engagement)
    checklist.previous_engagement = previous
    checklist.comparison = comparison
    checklist.responsible_actuary = checklist.responsible_actuary or engagement.lead_actuary
    checklist.information_date = checklist.information_date or disclosures.information_date(
        engagement
    )
    checklist.material_changes = checklist.material_changes or summary
    old, new = changes(before, snapshot(checklist))
    if created or new:
        if checklist.status == DisclosureChecklistStatus.COMPLETED:
            checklist.revise()
            old, new = changes(before, snapshot(checklist))
        validate(checklist)
        save_with_history(checklist, actor=actor, reason="Pre-filled", created=created)
        audit_record(
            action=AuditAction.DISCLOSURE_CHECKLIST_UPDATE,
            resource=checklist,
            user=actor,
            description=f"Disclosure checklist pre-filled: {checklist}",
            old_value=None if created else old,
            new_value=snapshot(checklist) if created else new,
        )
    return checklist


@audited_transaction
def disclosure_checklist_update(
    *, checklist: DisclosureChecklist, actor: AbstractUser, data: dict[str, Any]
) -> DisclosureChecklist:
    """Change what a checklist discloses (responsible actuary, date, texts) until it is frozen.

    A completed checklist that changes goes back to draft (the lead completes it again).
    """
    engagement = lock(checklist.engagement)
    checklist = lock(checklist)
    engagement_require_member(engagement=engagement, user=actor, verb="edit the disclosures of")
    _require_not_frozen(checklist, verb="edit")
    before = snapshot(checklist)
    apply_changes(
        checklist, data=data, allowed=CHECKLIST_EDITABLE_FIELDS, reason=CHECKLIST_FIXED_REASON
    )
    old, new = changes(before, snapshot(checklist))
    if not new:
        return checklist
    if "responsible_actuary" in new and checklist.responsible_actuary is not None:
        engagement_require_member(
            engagement=engagement,
            user=checklist.responsible_actuary,
            verb="be the responsible actuary of",
        )
    if checklist.status == DisclosureChecklistStatus.COMPLETED:
        checklist.revise()
        old, new = changes(before, snapshot(checklist))
    validate(checklist)
    save_edit_and_record(
        checklist, actor=actor, action=AuditAction.DISCLOSURE_CHECKLIST_UPDATE, old=old, new=new
    )
    return checklist


@audited_transaction
def disclosure_checklist_complete(
    *, checklist: DisclosureChecklist, actor: AbstractUser
) -> DisclosureChecklist:
    """Complete the checklist: draft → completed; by the engagement's lead actuary only.

    Needs a responsible actuary and an information date, and every input data
    artefact in the data reliance register; the reliances are taken from the
    register as it stands now.
    """
    engagement = lock(checklist.engagement)
    checklist = lock(checklist)
    engagement_require_member(engagement=engagement, user=actor, verb="complete the disclosures of")
    _require_not_frozen(checklist, verb="complete")
    checklist.check_move("complete")
    if actor.pk != engagement.lead_actuary_id:
        raise NotAllowed(
            CHECKLIST_LEAD_ONLY.format(
                user=actor, checklist=checklist, lead=engagement.lead_actuary or "none"
            )
        )
    for field, what in (
        ("responsible_actuary", "the responsible actuary"),
        ("information_date", "the information date"),
    ):
        if getattr(checklist, field) is None:
            raise InvalidInput(
                CHECKLIST_FIELD_REQUIRED.format(checklist=checklist, what=what), field=field
            )
    _require_reliance_register(engagement, verb="complete the disclosures for")
    checklist.reliances = disclosures.reliance_snapshot(engagement)
    return move_and_record(
        checklist,
        "complete",
        actor=actor,
        action=AuditAction.DISCLOSURE_CHECKLIST_COMPLETE,
        description=f"Disclosure checklist completed: {checklist}",
        user=actor,
    )


def _require_reliance_register(engagement: Engagement, *, verb: str) -> None:
    """Raise Conflict naming the input data that has no data reliance entry."""
    missing = engagement_input_data_without_reliance(engagement)
    if missing:
        raise Conflict(
            FINAL_SIGN_OFF_NO_RELIANCE.format(
                verb=verb,
                engagement=engagement,
                count=len(missing),
                artefacts=", ".join(f"“{artefact}”" for artefact in missing),
            )
        )


def _open_checklist(engagement: Engagement) -> DisclosureChecklist | None:
    """Return the engagement's checklist that is not frozen yet, locked (or None)."""
    return (
        DisclosureChecklist.objects.select_for_update(no_key=True)
        .filter(engagement=engagement, frozen_at__isnull=True)
        .first()
    )


def _completed_checklist(engagement: Engagement) -> DisclosureChecklist:
    """Return the open, completed checklist a final sign-off freezes; Conflict if none."""
    checklist = _open_checklist(engagement)
    if checklist is None:
        raise Conflict(FINAL_SIGN_OFF_NO_CHECKLIST.format(engagement=engagement))
    if checklist.status != DisclosureChecklistStatus.COMPLETED:
        raise Conflict(FINAL_SIGN_OFF_CHECKLIST_DRAFT.format(engagement=engagement))
    if checklist.reliances != disclosures.reliance_snapshot(engagement):
        raise Conflict(FINAL_SIGN_OFF_CHECKLIST_STALE.format(engagement=engagement))
    return checklist


def _require_not_frozen(checklist: DisclosureChecklist, *, verb: str) -> None:
    if checklist.is_frozen:
        raise Conflict(
            CHECKLIST_FROZEN.format(
                verb=verb,
                checklist=checklist,
                approval=checklist.frozen_into or "deleted",
                frozen_at=format_datetime(checklist.frozen_at),
            )
        )
