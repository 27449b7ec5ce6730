"""The messages of the approval services' refusals: module constants, so tests can match them."""

from __future__ import annotations

APPROVAL_NO_SUBJECT = "An approval needs a subject: an artefact, a workflow run or an engagement."
APPROVAL_SUBJECT_MISMATCH = (
    "The {what} “{subject}” belongs to engagement “{other}”, not “{engagement}”: "
    "an approval has one engagement."
)
APPROVAL_NEEDS_RUN = (
    "A workflow approval needs the workflow run it releases (give the run, or an "
    "artefact produced by it)."
)
APPROVAL_RUN_ONLY_FOR_WORKFLOW = (
    "Only a workflow approval releases a workflow run; request a {approval_type} on the "
    "run's artefact or on the engagement instead."
)
APPROVAL_EXPIRY_PAST = "An approval cannot expire in the past ({expires_at})."
APPROVAL_ARTEFACT_NOT_REVIEWABLE = (
    "Cannot request approval of artefact “{artefact}”: it is {status} (only draft or "
    "pending-review artefacts can be reviewed; upload a new version instead)."
)
APPROVAL_ALREADY_PENDING = (
    "Cannot request another approval of {what} “{subject}”: approval “{approval}” is still pending."
)
APPROVAL_RUN_NOT_AWAITING = (
    "Cannot request a workflow approval of run “{run}”: it is {status} (only a running "
    "run, or one waiting for approval, can be submitted)."
)
APPROVAL_NOT_INDEPENDENT = "{user} may not {verb} approval “{approval}”: {reason}."
REASON_OWN_REQUEST = "they requested it (reviews must be independent)"
# `conflict` says how they took part in the work: "they started workflow run “…”".
REASON_LINEAGE = "{conflict} (reviews must be independent)"
COI_STATEMENT_REQUIRED = (
    "{user} must record a conflict-of-interest statement to decide approval “{approval}”: "
    "say whether anything could impair their independence (or that nothing does)."
)
APPROVAL_DESIGNATED_ONLY = (
    "{user} may not decide approval “{approval}”: only its designated approver, "
    "{designated}, may decide it."
)
APPROVAL_QUALIFICATION_REQUIRED = (
    "{user} may not decide approval “{approval}”: a {approval_type} needs an approver "
    "holding a professional qualification valid on {day}, and they hold none."
)
APPROVAL_QUALIFICATION_TOO_NEW = (
    "{user} may not decide approval “{approval}”: a {approval_type} needs an approver "
    "holding a professional qualification valid on {day}, recorded before the sign-off was "
    "requested ({requested}); {qualifications} was recorded or changed after that and does "
    "not count for it. Request a new approval."
)
APPROVAL_EXPIRED = "Cannot decide approval “{approval}”: it expired{when}."
APPROVAL_ARTEFACT_CHANGED = (
    "Cannot decide approval “{approval}”: artefact “{artefact}” changed since the approval "
    "was requested (requested on version {version}, SHA-256 {requested_hash}; now version "
    "{current_version}, SHA-256 {current_hash}). Request a new approval."
)
APPROVAL_ARTEFACT_NOT_IN_REVIEW = (
    "Cannot decide approval “{approval}”: artefact “{artefact}” is {status}, not pending review."
)
APPROVAL_REVOKE_NOT_ALLOWED = (
    "{user} may not revoke approval “{approval}”: only its approver, the engagement's "
    "lead actuary or reviewer, or a superuser may revoke it."
)
APPROVAL_NOT_DUE = (
    "Cannot expire approval “{approval}”: it is not past its expiry date ({expires_at})."
)
APPROVAL_NOT_EDITABLE = (
    "Cannot edit approval “{approval}”: it is {status} (only pending approvals may be edited)."
)
APPROVAL_EDIT_NOT_ALLOWED = (
    "{user} may not edit approval “{approval}”: only its requester or a superuser may."
)
NOT_EDITABLE_REASON = "they are fixed when the approval is requested or decided"
QUALIFICATION_NOT_ALLOWED = (
    "{user} may not certify professional qualifications: only certifiers may (the "
    "“{group}” group, permission “{permission}”)."
)
QUALIFICATION_OWN = (
    "{user} may not record or change their own professional qualification: another "
    "person must verify it."
)
QUALIFICATION_FIXED_REASON = "a qualification belongs to one person"

APPROVAL_OPEN_POINTS = (
    "Cannot approve approval “{approval}”: {count} review point(s) not resolved "
    "({severities}); have each answered and resolved first."
)
REVIEW_POINT_APPROVAL_DECIDED = (
    "Cannot {verb} review points of approval “{approval}”: it is {status} (review points "
    "belong to a pending approval; its record is fixed once decided)."
)
REVIEW_POINT_TEXT_REQUIRED = "Say what the review point is: its text is required."
REVIEW_POINT_SUBJECT_ELSEWHERE = (
    "The {what} “{subject}” belongs to another engagement than approval “{approval}”."
)
REVIEW_POINT_OWN = (
    "{user} may not {verb} review point “{point}”: they {did} it (a challenge is answered "
    "and accepted by different people)."
)
REVIEW_POINT_NOT_PREPARER = (
    "{user} may not respond to review point “{point}”: only the preparer answers it (the "
    "approval's requester, the engagement's lead actuary, or someone who took part in the "
    "work under review)."
)
FINAL_SIGN_OFF_NO_RELIANCE = (
    "Cannot {verb} a final sign-off of engagement “{engagement}”: {count} input data "
    "artefact(s) have no entry in the data reliance register: {artefacts}. Record one for each."
)
FINAL_SIGN_OFF_NO_CHECKLIST = (
    "Cannot request a final sign-off of engagement “{engagement}”: it has no disclosure "
    "checklist; pre-fill one, review it, and have the lead actuary complete it."
)
FINAL_SIGN_OFF_CHECKLIST_DRAFT = (
    "Cannot request a final sign-off of engagement “{engagement}”: its disclosure checklist "
    "is a draft; the lead actuary must complete it first."
)
FINAL_SIGN_OFF_CHECKLIST_STALE = (
    "Cannot request a final sign-off of engagement “{engagement}”: the data reliance "
    "register changed since the disclosure checklist was completed; pre-fill it again and "
    "have the lead actuary complete it."
)
CHECKLIST_FROZEN = (
    "Cannot {verb} disclosure checklist “{checklist}”: it was frozen into final sign-off "
    "“{approval}” on {frozen_at} and is locked; pre-fill a new one for "
    "another request."
)
CHECKLIST_LEAD_ONLY = (
    "{user} may not complete disclosure checklist “{checklist}”: only the engagement's lead "
    "actuary ({lead}) completes it."
)
CHECKLIST_FIELD_REQUIRED = "Cannot complete disclosure checklist “{checklist}”: {what} is required."

CHECKLIST_FIXED_REASON = "they are filled from the register and the previous engagement"
ARTEFACT_HAS_PENDING_APPROVAL = (
    "Cannot {verb} artefact “{artefact}”: its approval “{approval}” is still pending; "
    "have it decided first."
)
MEMO_FORMAT_INVALID = "format must be one of {formats}, not {value!r}."
