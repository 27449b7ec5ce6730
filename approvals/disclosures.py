"""What the system holds for an engagement's disclosures (ASOP 41): reads, no writes.

`disclosure_checklist_prefill` (approvals.services) fills a checklist from these:

- the reliances: the data reliance register's entries for the engagement's input
  data (`artefacts.selectors.engagement_input_data`);
- the information date: the latest date the relied-on data is as of, else the end
  of the engagement's period;
- material changes from the previous engagement: the latest completed (or
  archived) engagement of the same client code and engagement type whose period
  ended before this one's (any earlier one if periods are missing), and the key
  results of both: for each reserving workflow type and measure (paid, incurred),
  the latest run whose results were approved, with its totals (latest, ultimate,
  IBNR, Mack S.E.) and its assumptions (average, tail factor).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Q

from artefacts.models import DataReliance
from artefacts.selectors import engagement_input_data
from engagements.choices import EngagementStatus
from engagements.models import Engagement
from workflows.choices import WorkflowStatus, WorkflowType
from workflows.models import WorkflowRun

from .choices import ApprovalStatus, ApprovalType

if TYPE_CHECKING:
    import datetime

# The reserving workflows whose approved totals are an engagement's key results.
RESERVING_TYPES = (WorkflowType.RESERVE_CALCULATION, WorkflowType.IBNR_ESTIMATION)
FINISHED_STATUSES = (EngagementStatus.COMPLETED, EngagementStatus.ARCHIVED)
TOTALS = (
    ("ibnr", "IBNR"),
    ("ultimate", "ultimate"),
    ("latest", "latest"),
    ("mack_se", "Mack S.E."),
)
ASSUMPTIONS = (("average", "average"), ("tail_factor", "tail factor"))

NO_PREVIOUS = (
    "No previous completed {engagement_type} engagement of client {client_code} is on "
    "record: there are no changes from a previous engagement to disclose."
)
PREVIOUS = "Compared with the previous engagement “{engagement}”{period}:"
NO_KEY_RESULTS = (
    "- Neither engagement has approved reserving results on record to compare; describe "
    "any changes in data, methods and assumptions here."
)
ONLY_IN = "- {label}: in the {which} engagement only ({figures})."


def reliance_snapshot(engagement: Engagement) -> list[dict[str, Any]]:
    """Return the register's entries for the engagement's input data, by artefact name."""
    entries = DataReliance.objects.filter(
        artefact__in=engagement_input_data(engagement)
    ).select_related("artefact")
    return [entry.snapshot() for entry in entries.order_by("artefact__name", "artefact__version")]


def information_date(engagement: Engagement) -> datetime.date | None:
    """Return the latest date the relied-on data is as of, else the period's end."""
    dates = [
        entry.data_as_of
        for entry in DataReliance.objects.filter(artefact__in=engagement_input_data(engagement))
    ]
    return max(dates) if dates else engagement.period_end


def previous_engagement(engagement: Engagement) -> Engagement | None:
    """Return the previous completed engagement of the same client and type, if any."""
    candidates = (
        Engagement.objects.filter(
            client_code__iexact=engagement.client_code,
            engagement_type=engagement.engagement_type,
            status__in=FINISHED_STATUSES,
        )
        .exclude(pk=engagement.pk)
        .order_by("-period_end", "-created_at")
    )
    if engagement.period_end is not None:
        earlier = candidates.filter(
            Q(period_end__lt=engagement.period_end)
            | Q(period_end__isnull=True, created_at__lt=engagement.created_at)
        )
    else:
        earlier = candidates.filter(created_at__lt=engagement.created_at)
    return earlier.first()


def key_results(engagement: Engagement) -> dict[str, dict[str, Any]]:
    """Return {"<workflow type>:<measure>": results} of the engagement's approved reserving runs.

    The latest completed run of each type and measure whose workflow approval was
    granted; its totals and assumptions come from its output summary.
    """
    runs = (
        WorkflowRun.objects.filter(
            engagement=engagement,
            workflow_type__in=RESERVING_TYPES,
            status=WorkflowStatus.COMPLETED,
            approvals__approval_type=ApprovalType.WORKFLOW_APPROVAL,
            approvals__status=ApprovalStatus.APPROVED,
        )
        .distinct()
        .order_by("completed_at")
    )
    results: dict[str, dict[str, Any]] = {}
    for run in runs:
        summary = run.output_summary or {}
        totals = summary.get("totals") or {}
        measure = summary.get("measure") or "unknown"
        options = summary.get("options") or {}
        results[f"{run.workflow_type}:{measure}"] = {
            "run_id": str(run.pk),
            "run": run.name,
            "workflow_type": run.workflow_type,
            "measure": measure,
            "totals": {key: totals.get(key) for key, _label in TOTALS},
            "assumptions": {key: options.get(key) for key, _label in ASSUMPTIONS},
        }
    return results


def material_changes(engagement: Engagement) -> tuple[Engagement | None, dict, str]:
    """Return the previous engagement, the comparison of key results, and a summary text."""
    previous = previous_engagement(engagement)
    if previous is None:
        text = NO_PREVIOUS.format(
            engagement_type=engagement.get_engagement_type_display().lower(),
            client_code=engagement.client_code,
        )
        return None, {}, text
    before, now = key_results(previous), key_results(engagement)
    comparison = {
        "previous_engagement": {"id": str(previous.pk), "name": str(previous)},
        "results": [
            {"key": key, "previous": before.get(key), "current": now.get(key)}
            for key in sorted(set(before) | set(now))
        ],
    }
    period = (
        f" (period {previous.period_start or '…'} to {previous.period_end or '…'})"
        if previous.period_start or previous.period_end
        else ""
    )
    lines = [PREVIOUS.format(engagement=previous, period=period)]
    if not comparison["results"]:
        lines.append(NO_KEY_RESULTS)
    for row in comparison["results"]:
        lines.append(_change_line(row["previous"], row["current"]))
    return previous, comparison, "\n".join(lines)


def _change_line(previous: dict | None, current: dict | None) -> str:
    either = current or previous
    label = f"{WorkflowType(either['workflow_type']).label} ({either['measure']})"
    if previous is None or current is None:
        which = "current" if previous is None else "previous"
        return ONLY_IN.format(label=label, which=which, figures=_figures(either))
    parts = []
    for key, name in TOTALS:
        parts.append(f"{name} {_change(previous['totals'].get(key), current['totals'].get(key))}")
    for key, name in ASSUMPTIONS:
        old, new = previous["assumptions"].get(key), current["assumptions"].get(key)
        parts.append(f"{name} {_plain(old)} → {_plain(new)}" + ("" if old == new else " (changed)"))
    return f"- {label}: " + "; ".join(parts) + "."


def _figures(results: dict) -> str:
    return ", ".join(
        f"{name} {_amount(results['totals'].get(key))}"
        for key, name in TOTALS
        if results["totals"].get(key) is not None
    )


def _change(old: float | None, new: float | None) -> str:
    text = f"{_amount(old)} → {_amount(new)}"
    if isinstance(old, int | float) and isinstance(new, int | float) and old:
        text += f" ({(new - old) / abs(old):+.1%})"
    return text


def _amount(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _plain(value: Any) -> str:
    return "none" if value is None else str(value)
