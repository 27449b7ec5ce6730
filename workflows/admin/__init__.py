"""Admin for workflow runs.

- `runs`: the run pages (the form, the moves, the replay);
- `run_page`: what the change page shows below the fields (steps, results, provenance);
- `pages`: what workflows add to the engagement page.
"""

from .pages import (
    ENGAGEMENT_PAGE,
)
from .runs import (
    NOT_A_TRIANGLE_WORKFLOW,
    WorkflowRunAdmin,
    WorkflowRunForm,
)

__all__ = [
    "ENGAGEMENT_PAGE",
    "NOT_A_TRIANGLE_WORKFLOW",
    "WorkflowRunAdmin",
    "WorkflowRunForm",
]
