"""The file note's filter form and its Word export (audit.file_note, issue 17)."""

from __future__ import annotations

import io

from django import forms
from django.http import HttpResponse
from django.utils import timezone
from django.utils.text import slugify

from records.formatting import format_date, format_datetime

from .file_note import HIDDEN_BY_DEFAULT, KINDS, FileNoteEntry, FileNoteFilter

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class FileNoteFilterForm(forms.Form):
    """What a reader filters the file note by: kinds of event, a person, dates."""

    kind = forms.MultipleChoiceField(
        choices=tuple(KINDS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Kinds of event",
        initial=[kind for kind in KINDS if kind not in HIDDEN_BY_DEFAULT],
    )
    person = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Person", choices=()
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["person"].choices = (("", "Everyone"),)

    def offer_people(self, people: list[tuple[int, str]]) -> None:
        """Offer the people who acted on the note (and keep the one asked for)."""
        self.fields["person"].choices = (("", "Everyone"), *people)

    def note_filter(self) -> FileNoteFilter:
        """Return the filter the form asks for (the default one when it is not valid)."""
        if not self.is_bound:
            return FileNoteFilter()
        # The person is checked against who acted once the note is read: take it as given.
        data = self.data
        kinds = [kind for kind in data.getlist("kind") if kind in KINDS]
        person = data.get("person") or ""
        since = self._date("since")
        until = self._date("until")
        return FileNoteFilter(
            kinds=frozenset(kinds) if kinds else FileNoteFilter().kinds,
            person_id=int(person) if person.isdigit() else None,
            since=since,
            until=until,
        )

    def _date(self, name):
        try:
            return self.fields[name].clean(self.data.get(name) or None)
        except forms.ValidationError:
            return None

    def described(self) -> str:
        """Return the filter in words (said on the page and in the export)."""
        chosen = self.note_filter()
        parts = [", ".join(KINDS[kind].lower() for kind in KINDS if kind in chosen.kinds)]
        if chosen.person_id is not None:
            name = dict(self.fields["person"].choices).get(chosen.person_id, "one person")
            parts.append(f"by {name}")
        if chosen.since:
            parts.append(f"from {format_date(chosen.since)}")
        if chosen.until:
            parts.append(f"to {format_date(chosen.until)}")
        return "; ".join(parts)


def file_note_docx_response(engagement, entries: list[FileNoteEntry], described: str):
    """Return the file note as a Word document to download."""
    from docx import Document
    from docx.shared import Pt

    document = Document()
    document.add_heading(f"File note: {engagement}", level=1)
    document.add_paragraph(
        f"Exported {format_datetime(timezone.now())}. Events shown: {described}. "
        f"{len(entries)} event(s), newest first."
    )
    for entry in entries:
        paragraph = document.add_paragraph()
        when = paragraph.add_run(f"{format_datetime(entry.at)}  ")
        when.bold = True
        paragraph.add_run(entry.sentence)
        for change in entry.changes:
            item = document.add_paragraph(
                f"{change.label}: {change.old} → {change.new}", style="List Bullet"
            )
            for run in item.runs:
                run.font.size = Pt(9)
    buffer = io.BytesIO()
    document.save(buffer)
    response = HttpResponse(buffer.getvalue(), content_type=DOCX_TYPE)
    name = slugify(f"file note {engagement}") or "file-note"
    response["Content-Disposition"] = f'attachment; filename="{name}.docx"'
    return response
