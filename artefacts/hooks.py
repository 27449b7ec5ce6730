"""What artefacts ask of the apps above them (see `records.hooks`).

Artefacts sit below workflows and approvals; these hooks let those apps add their
rules to the artefact services, selectors and admin without artefacts importing them.

Provided by workflows (`WorkflowsConfig.ready()`):

- `run_inputs(engagement)`: {artefact id: [runs]} of the artefacts the engagement's
  live, not discarded, workflow runs read as input (part of its input data);
- `validation_runs()`: the runs whose results may support a data reliance entry
  (completed data_validation runs);
- `validation_run_problem(run, artefact)`: why `run` cannot support the data reliance
  entry of `artefact` (a message), or None.

Added to by approvals (`ApprovalsConfig.ready()`):

- `artefact_change_guards`: each `guard(artefact, verb)` raises a domain error when the
  artefact may not be replaced, archived or deleted (`verb`) yet, e.g. while a review
  of it is pending.
"""

from records.hooks import Hook, HookList

run_inputs = Hook(
    "run_inputs", "the artefacts an engagement's workflow runs read: workflows.selectors"
)
validation_runs = Hook(
    "validation_runs", "the runs that may support data reliance entries: workflows.selectors"
)
validation_run_problem = Hook(
    "validation_run_problem",
    "why a run cannot support an artefact's data reliance entry: workflows.selectors",
)
artefact_change_guards = HookList(
    "artefact_change_guards", "refuse replacing, archiving or deleting an artefact"
)
