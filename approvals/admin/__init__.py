"""Admin for approvals, review points, disclosure checklists and qualifications.

Everything changes through `approvals.services`. By model family:

- `approvals`: the approval pages (decisions, review points section, memo export);
- `review_points`, `disclosures`, `qualifications`: their own pages;
- `pages`: what approvals add to the artefact and engagement pages.

Approvals, points, checklists and qualifications are records of professional work:
they are never deleted here (a qualification ends with its end date).
"""

from .approvals import (
    ApprovalAdmin,
)
from .disclosures import (
    DisclosureChecklistAdmin,
)
from .pages import (
    ARTEFACT_PAGE,
    ENGAGEMENT_PAGE,
)
from .qualifications import (
    ProfessionalQualificationAdmin,
)
from .review_points import (
    ReviewPointAdmin,
)

__all__ = [
    "ARTEFACT_PAGE",
    "ENGAGEMENT_PAGE",
    "ApprovalAdmin",
    "DisclosureChecklistAdmin",
    "ProfessionalQualificationAdmin",
    "ReviewPointAdmin",
]
