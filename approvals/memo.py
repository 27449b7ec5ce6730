"""The review memo of an approval: its resolved review points, as Markdown and as Word.

Rendering only (`review_memo_export` in approvals.services stores the result as
artefacts). The same points always give the same bytes: no time of export is
written, and the Word file's package dates are fixed, so exporting an unchanged
memo again is recognised (same SHA-256) instead of stored twice.
"""

from __future__ import annotations

import datetime
import io
import zipfile
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from records.formatting import format_datetime

if TYPE_CHECKING:
    from .models import Approval, ReviewPoint

# Word's package parts carry dates; fixed ones keep a memo's bytes reproducible.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

TITLE = "Review memo: {approval}"
NO_POINTS = "No review points were resolved on this approval."
UNRESOLVED = "{count} further review point(s) are not resolved and are not part of this memo."


def _person(user) -> str:
    if user is None:
        return "unknown"
    return user.get_full_name() or user.get_username()


def _when(moment: datetime.datetime | None) -> str:
    # The one format of moments (records.formatting), its time zone named.
    return "" if moment is None else format_datetime(moment)


def _concerns(point: ReviewPoint) -> str:
    parts = []
    if point.artefact_id:
        parts.append(f"artefact “{point.artefact}”")
    if point.workflow_run_id:
        parts.append(f"workflow run “{point.workflow_run}”")
    return ", ".join(parts) or "the approval as a whole"


def memo_facts(approval: Approval, points: Sequence[ReviewPoint], unresolved: int) -> list[str]:
    """Return the memo's header facts, one line each."""
    severities = Counter(point.severity for point in points)
    counts = ", ".join(
        f"{severities[s]} {s}" for s in ("critical", "major", "minor") if severities[s]
    )
    subject = approval.artefact or approval.engagement
    facts = [
        f"Approval: {approval.get_approval_type_display()} of {subject}",
        f"Engagement: {approval.engagement}",
        f"Status: {approval.get_status_display().lower()}",
        f"Requested by {_person(approval.requested_by)} on {_when(approval.requested_at)}",
    ]
    if approval.approver_id:
        facts.append(f"Decided by {_person(approval.approver)} on {_when(approval.reviewed_at)}")
    if approval.artefact_id:
        facts.append(
            f"Artefact version {approval.artefact_version}, SHA-256 "
            f"{approval.artefact_content_hash or 'none'}"
        )
    facts.append(f"Resolved review points: {len(points)}" + (f" ({counts})" if counts else ""))
    return facts


def point_facts(point: ReviewPoint) -> list[tuple[str, str]]:
    """Return (label, text) pairs describing one resolved point."""
    facts = [
        ("Raised", f"by {_person(point.raised_by)} on {_when(point.created_at)}"),
        ("Concerns", _concerns(point)),
        ("Point", point.text),
        (
            "Response",
            f"{point.response} ({_person(point.responded_by)}, {_when(point.responded_at)})",
        ),
        ("Resolved", f"by {_person(point.resolved_by)} on {_when(point.resolved_at)}"),
    ]
    if point.resolution_notes:
        facts.append(("Resolution notes", point.resolution_notes))
    return facts


def review_memo_markdown(
    approval: Approval, points: Sequence[ReviewPoint], *, unresolved: int = 0
) -> str:
    """Return the memo as Markdown: the approval, then each resolved point in order."""
    lines = [f"# {TITLE.format(approval=approval)}", ""]
    lines += [f"- {fact}" for fact in memo_facts(approval, points, unresolved)]
    if unresolved:
        lines += ["", f"_{UNRESOLVED.format(count=unresolved)}_"]
    lines += ["", "## Review points", ""]
    if not points:
        lines.append(NO_POINTS)
    for number, point in enumerate(points, start=1):
        lines += [f"### {number}. {point.get_severity_display()}", ""]
        for label, text in point_facts(point):
            body = text.replace("\n", "\n  ")
            lines.append(f"- **{label}:** {body}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def review_memo_docx(
    approval: Approval, points: Sequence[ReviewPoint], *, unresolved: int = 0
) -> bytes:
    """Return the memo as a Word document (python-docx), byte-reproducible."""
    # Imported here: only an export needs python-docx (and lxml).
    import docx

    document = docx.Document()
    title = TITLE.format(approval=approval)
    properties = document.core_properties
    properties.title = title[:255]
    properties.author = _person(approval.requested_by)
    properties.last_modified_by = "AI Actuary back office"
    stamp = approval.requested_at.astimezone(datetime.UTC).replace(tzinfo=None)
    properties.created = properties.modified = stamp
    properties.revision = 1

    document.add_heading(title, level=0)
    for fact in memo_facts(approval, points, unresolved):
        document.add_paragraph(fact, style="List Bullet")
    if unresolved:
        document.add_paragraph(UNRESOLVED.format(count=unresolved)).runs[0].italic = True
    document.add_heading("Review points", level=1)
    if not points:
        document.add_paragraph(NO_POINTS)
    for number, point in enumerate(points, start=1):
        document.add_heading(f"{number}. {point.get_severity_display()}", level=2)
        table = document.add_table(rows=0, cols=2)
        table.style = "Table Grid"
        for label, text in point_facts(point):
            cells = table.add_row().cells
            cells[0].paragraphs[0].add_run(label).bold = True
            cells[1].text = text
    buffer = io.BytesIO()
    document.save(buffer)
    return _stable_zip(buffer.getvalue())


def _stable_zip(data: bytes) -> bytes:
    """Return the zip package with every member's date fixed (python-docx stamps now)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    target_buffer = io.BytesIO()
    with zipfile.ZipFile(target_buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = info.external_attr
            target.writestr(member, source.read(info.filename))
    return target_buffer.getvalue()
