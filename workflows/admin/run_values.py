"""A run's stored values (parameters, summary, error details) as people read them.

The run page (`run_page`) shows every stored value through `shown`: mappings as lists
of "Label: value", lists of mappings as tables, a reserving method by its name, other
codes as words (records.formatting), a record's id as a link to its page; never a dump.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.html import format_html, format_html_join

from records.admin.readable import UUID_TEXT
from records.formatting import field_label, humanize_code, readable_value

# How the run pages and lists name a reserving method.
METHOD_LABELS = {
    "chain_ladder": "Chain ladder",
    "bornhuetter_ferguson": "Bornhuetter-Ferguson",
    "benktander": "Benktander",
    "cape_cod": "Cape Cod",
    "bootstrap_odp": "ODP bootstrap",
}

# Keys of a stored summary that name a record, and where the record's admin page is.
ID_LINKS = {
    "artefact_id": ("admin:artefacts_artefact_change", "the artefact"),
    "run_id": ("admin:workflows_workflowrun_change", "the run"),
    "engagement_id": ("admin:engagements_engagement_change", "the engagement"),
}
# Keys holding a SHA-256: shown as code, like the provenance's hashes.
HASH_KEYS = frozenset({"content_hash", "output_sha256", "sha256"})
# Lists longer than this are counted, not listed.
LIST_SHOWN = 30


def shown(value: Any, key: str = ""):
    """Return a stored value as people read it (records.formatting): mappings as lists,
    lists of mappings as tables, codes as words, record ids as links; never a dump."""
    if value is None or value == "" or value == {} or value == []:
        return "—"
    if isinstance(value, dict):
        return format_html(
            '<ul class="workspace-list">{}</ul>',
            format_html_join(
                "", "<li>{}: {}</li>", (_entry(name, item) for name, item in value.items())
            ),
        )
    if isinstance(value, list | tuple):
        if all(isinstance(item, dict) for item in value):
            return _table(value)
        if len(value) > LIST_SHOWN:
            return f"{len(value)} items"
        return format_html_join(", ", "{}", ((shown(item, key),) for item in value))
    if key == "method" and isinstance(value, str):
        return METHOD_LABELS.get(value, humanize_code(value))
    if isinstance(value, str) and (key in HASH_KEYS or UUID_TEXT.match(value)):
        return format_html("<code>{}</code>", value)
    if isinstance(value, str):
        return humanize_code(value)
    if isinstance(value, float):
        return f"{value:,.6g}"
    return readable_value(value)


def _entry(name: str, value: Any) -> tuple[str, object]:
    """Return one (label, value) of a mapping; a record's id as a link to its page."""
    if name in ID_LINKS and isinstance(value, str) and UUID_TEXT.match(value):
        url_name, what = ID_LINKS[name]
        return field_label(name), format_html(
            '<a href="{}">open {}</a>', reverse(url_name, args=(value,)), what
        )
    return field_label(name), shown(value, name)


def _table(rows: list[dict[str, Any]]):
    """Return a list of mappings as a table, a column per key."""
    columns = list(dict.fromkeys(name for row in rows for name in row))
    head = format_html_join("", '<th scope="col">{}</th>', ((field_label(c),) for c in columns))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((shown(row.get(c), c),) for c in columns)),)
            for row in rows
        ),
    )
    return format_html(
        '<div style="overflow-x: auto;"><table class="workspace-table">'
        "<thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>",
        head,
        body,
    )
