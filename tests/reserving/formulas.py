"""A tiny evaluator of the formulas the working paper writes, to check they recompute.

The workbook writes only a few shapes: numbers, cell references (on the same sheet, on
another sheet, quoted when the name has spaces), + − × ÷ and ^, parentheses, and SUM over a
range of one column or row. Each is turned into Python and evaluated, cells referred to
first (recursively, cached). Anything else fails loudly, so a new formula shape is noticed.
"""

from __future__ import annotations

import re

from openpyxl.utils.cell import column_index_from_string, get_column_letter

TOKEN = re.compile(
    r"SUM\((?:(?:'(?P<sum_quoted>[^']+)'|(?P<sum_sheet>[A-Za-z]\w*))!)?"
    r"(?P<first>[A-Z]{1,3}\d+):(?P<last>[A-Z]{1,3}\d+)\)"
    r"|(?:(?:'(?P<quoted>[^']+)'|(?P<sheet>[A-Za-z]\w*))!)?(?P<cell>\b[A-Z]{1,3}\d+\b)"
)
ALLOWED = re.compile(r"[\d.eE+\-*/() ]*")
CELL = re.compile(r"([A-Z]{1,3})(\d+)")


class FormulaEvaluator:
    """Evaluate cells of an openpyxl workbook (loaded with formulas, not cached values)."""

    def __init__(self, workbook):
        self.workbook = workbook
        self.cache: dict[tuple[str, str], float | str | None] = {}

    def value(self, sheet: str, coordinate: str):
        """Return the cell's value, evaluating its formula if it holds one."""
        key = (sheet, coordinate)
        if key not in self.cache:
            raw = self.workbook[sheet][coordinate].value
            if isinstance(raw, str) and raw.startswith("="):
                self.cache[key] = self._evaluate(sheet, raw[1:])
            else:
                self.cache[key] = raw
        return self.cache[key]

    def _evaluate(self, sheet: str, formula: str) -> float:
        values: list[float] = []

        def replace(match: re.Match) -> str:
            if match.group("first"):
                target = match.group("sum_quoted") or match.group("sum_sheet") or sheet
                total = sum(
                    self._number(target, coordinate)
                    for coordinate in _cells(match.group("first"), match.group("last"))
                )
            else:
                target = match.group("quoted") or match.group("sheet") or sheet
                total = self._number(target, match.group("cell"))
            values.append(total)
            return f" _v[{len(values) - 1}] "

        expression = TOKEN.sub(replace, formula)
        skeleton = re.sub(r"_v\[\d+\]", "", expression).replace("^", "")
        assert ALLOWED.fullmatch(skeleton), f"unexpected formula shape: ={formula}"
        return eval(expression.replace("^", "**"), {"__builtins__": {}}, {"_v": values})

    def _number(self, sheet: str, coordinate: str) -> float:
        value = self.value(sheet, coordinate)
        return 0.0 if value in (None, "") else float(value)


def _cells(first: str, last: str) -> list[str]:
    (a_col, a_row), (b_col, b_row) = CELL.fullmatch(first).groups(), CELL.fullmatch(last).groups()
    columns = range(column_index_from_string(a_col), column_index_from_string(b_col) + 1)
    rows = range(int(a_row), int(b_row) + 1)
    return [f"{get_column_letter(c)}{r}" for c in columns for r in rows]
