"""What the workflow runner asks of the apps above it (see `records.hooks`).

- `run_awaiting_approval`: a run the runner finished needs its sign-off. The approvals
  app provides it (`ApprovalsConfig.ready()`): it requests the run's workflow approval
  in the name of the user who queued the run and returns that approval. Called inside
  the runner's transaction, so a refusal leaves the run running and is recorded as
  its failure.
"""

from records.hooks import Hook

run_awaiting_approval = Hook(
    "run_awaiting_approval",
    "request the workflow approval of a run that waits for it: approvals.services",
)
