"""The forms of the guided analysis's first two steps, and the triangle as they read it.

`TriangleUploadForm` takes the file to upload; `ColumnsForm` says how to read it (the
layout, the origin, development and value columns by the file's own headers, the
values and the measure) and makes the triangle's input_params; `read_preview` reads
the file with them into a formatted grid, or lists every problem, each named by its
row and column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django import forms

from artefacts.models import Artefact

from ..reserving import MEASURES
from ..reserving.triangles import MSG_NEGATIVE_HINT, MSG_NEGATIVE_HINT_FORM
from ..reserving.triangles.read import parse_triangle

NO_TRIANGLE_FILE = "Choose a triangle file to upload, or pick one below."
LAYOUT_CHOICES = (
    ("long", "Long: one row per cell, with origin, development and value columns"),
    ("wide", "Wide: origins down column A, one column per development age"),
)


# --- forms ----------------------------------------------------------------------------------


class TriangleUploadForm(forms.Form):
    """Step 1: a triangle file to upload (or, instead, one of the engagement's triangles)."""

    file = forms.FileField(required=False, label="Triangle file (CSV or Excel)")
    name = forms.CharField(
        max_length=255, required=False, help_text="How the triangle is listed; default: its file."
    )

    def clean(self):
        data = super().clean()
        if not data.get("file"):
            raise forms.ValidationError(NO_TRIANGLE_FILE)
        return data


class ColumnsForm(forms.Form):
    """Step 2: how to read the triangle file: its layout, columns, values and measure."""

    layout = forms.ChoiceField(choices=LAYOUT_CHOICES, widget=forms.RadioSelect, initial="long")
    origin = forms.ChoiceField(required=False, label="Origin column")
    development = forms.ChoiceField(required=False, label="Development column")
    value = forms.ChoiceField(required=False, label="Value column")
    cumulative = forms.ChoiceField(
        choices=(("true", "cumulative"), ("false", "incremental")),
        initial="true",
        label="Values are",
    )
    measure = forms.ChoiceField(choices=tuple((m, m) for m in MEASURES), initial="paid")
    allow_negative_development = forms.BooleanField(
        required=False,
        label="Allow negative development",
        help_text="Accept falling cumulative values (salvage, recoveries) with a warning.",
    )

    def __init__(self, *args, headers: tuple[str, ...], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "---------"), *((name, name) for name in headers if name)]
        for role in ("origin", "development", "value"):
            self.fields[role].choices = choices

    def clean(self):
        data = super().clean()
        if data.get("layout") == "long":
            for role in ("origin", "development", "value"):
                if not data.get(role):
                    self.add_error(role, f"Choose the file's {role} column.")
        return data

    def triangle_params(self) -> dict[str, Any]:
        """Return the triangle's input_params (without the artefact) these choices make."""
        data = self.cleaned_data
        params: dict[str, Any] = {
            "layout": data["layout"],
            "cumulative": data["cumulative"] == "true",
            "measure": data["measure"],
            "allow_negative_development": bool(data.get("allow_negative_development")),
        }
        if data["layout"] == "long":
            params["columns"] = {role: data[role] for role in ("origin", "development", "value")}
        return params


def columns_query(params: dict[str, Any]) -> dict[str, str]:
    """Return the ColumnsForm data that gives `params` (the triangle parameters of a run)."""
    query = {
        "layout": "wide" if params.get("layout") == "wide" else "long",
        "cumulative": "true" if params.get("cumulative") else "false",
        "measure": params.get("measure") or "paid",
    }
    if params.get("allow_negative_development"):
        query["allow_negative_development"] = "on"
    query.update(params.get("columns") or {})
    return query


# --- reading the triangle ----------------------------------------------------------------


@dataclass(frozen=True)
class TrianglePreview:
    """The triangle as read (a formatted grid), or every problem found, and the warnings."""

    ages: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    triangle: Any = None


def read_preview(data: bytes, artefact: Artefact, params: dict[str, Any]) -> TrianglePreview:
    """Return the preview of the triangle file read with `params`."""
    outcome = parse_triangle(
        data,
        artefact.file_name,
        layout=params["layout"],
        cumulative=params["cumulative"],
        measure=params["measure"],
        allow_negative_development=params["allow_negative_development"],
        columns=params.get("columns"),
    )
    triangle = outcome.triangle
    if triangle is None:
        problems = tuple(
            issue.message.replace(MSG_NEGATIVE_HINT, MSG_NEGATIVE_HINT_FORM)
            for issue in outcome.issues
        )
        return TrianglePreview((), (), problems, ())
    ages = tuple(_number(age, decimals=None) for age in triangle.development_ages)
    decimals = 0 if _all_whole(triangle.values) else 2
    rows = tuple(
        (
            origin,
            tuple(
                "" if value is None else _number(value, decimals=decimals)
                for value in (*values, *([None] * (len(ages) - len(values))))
            ),
        )
        for origin, values in zip(triangle.origins, triangle.values, strict=True)
    )
    return TrianglePreview(ages, rows, (), tuple(triangle.warnings), triangle)


def _all_whole(values) -> bool:
    return all(v is None or float(v).is_integer() for row in values for v in row)


def _number(value, *, decimals: int | None) -> str:
    if decimals is None:
        return str(int(value)) if float(value).is_integer() else str(value)
    if not math.isfinite(value):
        return "—"
    return f"{value:,.{decimals}f}"
