"""Every write to approvals and professional qualifications: the professional-standards rules.

Reviews of actuarial work must be independent, qualified and on record:

- nobody decides an approval they requested, nor one on work they took part in:
  anything in its lineage (`approvals.lineage`: the artefact and its earlier
  versions, the runs that produced them, those runs' inputs) they uploaded,
  created, queued or started; a designated approver is the only one who may
  decide;
- the decider records a conflict-of-interest statement with the decision;
- sign-offs (`SIGN_OFF_TYPES`) need a professional qualification valid on the
  decision date, and every decision snapshots the approver's valid
  qualifications;
- an artefact approval pins the artefact's version and SHA-256 when requested,
  and a decision is refused if they no longer match;
- review points (APS X2): whoever may decide an approval raises challenges on it,
  the preparer answers, the reviewer resolves or reopens; an approval is not
  approved while any point is unresolved, and the resolved points export as a
  review memo (Markdown and Word artefacts);
- a final sign-off needs every input data artefact in the data reliance register
  (ASOP 23) and a completed disclosure checklist (ASOP 41), which is frozen into
  the approval when it is requested;
- the decision carries through: the artefact is approved or rejected, a run
  waiting for its workflow approval completes or fails.

By concern: `approvals` (requests and decisions), `review_points`, `memos`,
`checklists` (disclosures and the reliance register), `qualifications`; the refusal
messages are in `approvals.errors`.
"""

from .approvals import (
    EDITABLE_FIELDS,
    NEW_APPROVALS,
    NEW_DECISIONS,
    NEW_REVOCATIONS,
    approval_approve,
    approval_expire,
    approval_reject,
    approval_request,
    approval_revoke,
    approval_update,
    artefact_require_no_pending_approval,
    workflow_approval_request,
)
from .checklists import (
    CHECKLIST_EDITABLE_FIELDS,
    NEW_DISCLOSURES,
    disclosure_checklist_complete,
    disclosure_checklist_prefill,
    disclosure_checklist_update,
)
from .memos import (
    MEMO_METADATA_KEY,
    NEW_MEMOS,
    review_memo_export,
)
from .qualifications import (
    CERTIFIERS_GROUP,
    CERTIFY_QUALIFICATION_PERMISSION,
    QUALIFICATION_FIELDS,
    may_certify,
    qualification_create,
    qualification_update,
    qualifications_valid_on,
)
from .review_points import (
    NEW_REVIEW_POINTS,
    review_point_raise,
    review_point_reopen,
    review_point_resolve,
    review_point_respond,
)

__all__ = [
    "CERTIFIERS_GROUP",
    "CERTIFY_QUALIFICATION_PERMISSION",
    "CHECKLIST_EDITABLE_FIELDS",
    "EDITABLE_FIELDS",
    "MEMO_METADATA_KEY",
    "NEW_APPROVALS",
    "NEW_DECISIONS",
    "NEW_DISCLOSURES",
    "NEW_MEMOS",
    "NEW_REVIEW_POINTS",
    "NEW_REVOCATIONS",
    "QUALIFICATION_FIELDS",
    "approval_approve",
    "approval_expire",
    "approval_reject",
    "approval_request",
    "approval_revoke",
    "approval_update",
    "artefact_require_no_pending_approval",
    "disclosure_checklist_complete",
    "disclosure_checklist_prefill",
    "disclosure_checklist_update",
    "may_certify",
    "qualification_create",
    "qualification_update",
    "qualifications_valid_on",
    "review_memo_export",
    "review_point_raise",
    "review_point_reopen",
    "review_point_resolve",
    "review_point_respond",
    "workflow_approval_request",
]
