"""Claims development triangles: the data, reading them from CSV or Excel, and checking them.

``data`` holds the validated triangle (``TriangleData``); ``read`` reads one from a file
(``read_triangle``, raising ``TriangleError`` at the first failing check); ``validate``
reports on every check without raising (``validate_triangle``). Only the standard
library is used; openpyxl is imported inside the Excel reader.
"""

from workflows.reserving.triangles.checks import CHECKS
from workflows.reserving.triangles.data import (
    GRAIN_MONTHS,
    LAYOUTS,
    MEASURES,
    TriangleData,
    TriangleError,
    TriangleIssue,
)
from workflows.reserving.triangles.messages import (
    MSG_NEGATIVE_HINT,
    MSG_NEGATIVE_HINT_FORM,
    MSG_ZERO_VALUES,
)
from workflows.reserving.triangles.read import FileHeaders, file_headers, read_triangle
from workflows.reserving.triangles.validate import CHECK_DESCRIPTIONS, validate_triangle

__all__ = [
    "CHECKS",
    "CHECK_DESCRIPTIONS",
    "GRAIN_MONTHS",
    "LAYOUTS",
    "MEASURES",
    "MSG_NEGATIVE_HINT",
    "MSG_NEGATIVE_HINT_FORM",
    "MSG_ZERO_VALUES",
    "FileHeaders",
    "TriangleData",
    "TriangleError",
    "TriangleIssue",
    "file_headers",
    "read_triangle",
    "validate_triangle",
]
