"""What engagements ask of the apps above them (see `records.hooks`).

- `completion_checks`: each `check(engagement)` raises a domain error while the
  engagement may not complete yet. Workflows adds "no run still open"
  (`WorkflowsConfig.ready()`), approvals "an approved final sign-off"
  (`ApprovalsConfig.ready()`); they run in that order, inside the completion's
  transaction, with the engagement row locked.

The engagement's admin page is extended through `records.admin.extensions` (runs,
artefacts, approvals, the data reliance register and the final sign-off).
"""

from records.hooks import HookList

completion_checks = HookList(
    "engagement_completion_checks", "refuse to complete an engagement while work is open"
)
