"""The Excel working paper of a reserving run: its header from the run, and its download.

The engine (`workflows.reserving.outputs.workbook`) writes the workbook from the result
and the triangle; what it cannot know (the client, the engagement, the valuation date,
who ran it and whether it is approved, what the run read and ran with) is given here
as a ``WorkingPaperHeader``. The run stores its working paper when it computes its
results, as a DRAFT (so a replay writes the same bytes); the run page's download writes
it again with the run's current status: APPROVED with the approver and date once the
workflow approval is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workflows.reserving.outputs.workbook import (
    STATUS_APPROVED,
    STATUS_DRAFT,
    WorkingPaperHeader,
    working_paper_xlsx,
)

if TYPE_CHECKING:
    from workflows.models import WorkflowRun
    from workflows.reserving import TriangleData

# The approval whose decision completes a reserving run (approvals.choices.ApprovalType).
WORKFLOW_APPROVAL = "workflow_approval"
APPROVED = "approved"


def working_paper_header(run: WorkflowRun, *, approval=None) -> WorkingPaperHeader:
    """Return the header of the run's working paper: DRAFT, or APPROVED by `approval`.

    `approval` is the run's workflow approval once approved (None: a draft).
    """
    engagement = run.engagement
    author = run.queued_by or run.created_by
    approved = approval is not None and approval.status == APPROVED
    valuation = engagement.period_end.isoformat() if engagement.period_end else run.period
    return WorkingPaperHeader(
        client=f"{engagement.client_name} ({engagement.client_code})",
        engagement=engagement.name,
        valuation_date=valuation or "",
        run_id=str(run.pk),
        run_name=run.name,
        author=_person(author),
        status=STATUS_APPROVED if approved else STATUS_DRAFT,
        approver=_person(approval.approver) if approved else "",
        approved_on=approval.reviewed_at.date().isoformat()
        if approved and approval.reviewed_at
        else "",
        provenance=provenance_rows(run.provenance if isinstance(run.provenance, dict) else {}),
    )


def approved_workflow_approval(run: WorkflowRun):
    """Return the run's approved workflow approval (with its approver), or None."""
    return (
        run.approvals.filter(approval_type=WORKFLOW_APPROVAL, status=APPROVED)
        .select_related("approver")
        .order_by("-reviewed_at")
        .first()
    )


def run_working_paper_xlsx(run: WorkflowRun, triangle: TriangleData) -> bytes:
    """Return the run's working paper with its current status (read from its summary)."""
    summary: dict[str, Any] = run.output_summary if isinstance(run.output_summary, dict) else {}
    header = working_paper_header(run, approval=approved_workflow_approval(run))
    return working_paper_xlsx(summary, triangle=triangle, header=header)


def provenance_rows(provenance: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Return what the run read and ran with (its recorded provenance) as (what, value) rows."""
    rows: list[tuple[str, str]] = []
    for item in provenance.get("inputs") or ():
        if not isinstance(item, dict):
            continue
        name = f"{item.get('param')}: {item.get('name')} v{item.get('version')}"
        rows.append((name, str(item.get("file_name") or "")))
        rows.append((f"{item.get('param')} SHA-256", str(item.get("content_hash") or "")))
    parameters = provenance.get("parameters") or {}
    if parameters.get("sha256"):
        rows.append(("Parameters SHA-256", str(parameters["sha256"])))
    if parameters.get("canonical"):
        rows.append(("Parameters", str(parameters["canonical"])))
    if provenance.get("implementation"):
        rows.append(("Implementation", str(provenance["implementation"])))
    environment = provenance.get("environment") or {}
    for key, label in (("app_version", "App version"), ("git_commit", "Git commit")):
        if environment.get(key):
            rows.append((label, str(environment[key])))
    if environment.get("python"):
        rows.append(("Python", str(environment["python"])))
    for name, version in sorted((environment.get("libraries") or {}).items()):
        rows.append((f"Library {name}", str(version)))
    return tuple(rows)


def _person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()
