"""The Excel working paper: its header, its sheets, and live formulas that recompute the result.

Each method's workbook is opened with openpyxl (formulas, not cached values) and its
formulas evaluated by a tiny evaluator (tests/reserving/formulas.py): the CDFs from the
selected factors, ultimate, IBNR and the totals must give the result's own figures.
"""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from workflows.reserving import (
    DevelopmentSelection,
    FactorOverride,
    TailSelection,
    benktander,
    bootstrap_odp,
    bornhuetter_ferguson,
    cape_cod,
    chain_ladder_mack,
)
from workflows.reserving.outputs.workbook import (
    RESULTS_HEADER_ROW,
    SELECTIONS,
    WorkingPaperHeader,
    reserve_result_xlsx,
    result_columns,
)

from .formulas import FormulaEvaluator

HEADER = WorkingPaperHeader(
    client="Acme General Insurance plc",
    engagement="ACME · FY2025 reserve review",
    valuation_date="2025-12-31",
    run_id="8d7c…",
    run_name="RAA chain ladder",
    author="Alice Fairweather",
    status="APPROVED",
    approver="Bob Castellano",
    approved_on="2026-01-15",
    provenance=(("Triangle file", "raa.csv"), ("Triangle SHA-256", "ab" * 32)),
)
JUDGMENT = {
    "selection": DevelopmentSelection(
        exclude=(("1982", 12),),
        selected_factors=(FactorOverride(24, 1.75, "Market study benchmark"),),
    ),
    "tail": TailSelection("constant", 1.05, "Industry tail"),
}


def exposure(raa):
    return {origin: 20_000.0 + 1_000 * i for i, origin in enumerate(raa.origins)}


METHODS = {
    "chain_ladder": lambda t: chain_ladder_mack(t, **JUDGMENT),
    "bornhuetter_ferguson": lambda t: bornhuetter_ferguson(
        t, exposure=exposure(t), apriori_loss_ratio=0.7, **JUDGMENT
    ),
    "benktander": lambda t: benktander(
        t, exposure=exposure(t), apriori_loss_ratio=0.7, n_iterations=3, **JUDGMENT
    ),
    "cape_cod": lambda t: cape_cod(t, exposure=exposure(t), trend=0.02, decay=0.9, **JUDGMENT),
    "bootstrap_odp": lambda t: bootstrap_odp(t, random_seed=3, n_sims=200, **JUDGMENT),
}


def workbook_of(result, triangle, header=HEADER):
    data = reserve_result_xlsx(result, triangle=triangle, header=header)
    return load_workbook(io.BytesIO(data)), data


@pytest.mark.parametrize("method", list(METHODS))
def test_the_formulas_recompute_the_stored_results(raa, method):
    result = METHODS[method](raa)
    workbook, _ = workbook_of(result, raa)
    evaluate = FormulaEvaluator(workbook)
    columns = result_columns(result.to_dict())
    letter = {column: chr(65 + index) for index, column in enumerate(columns)}
    sheet = workbook["Reserves"]
    for number, origin in enumerate(result.origins):
        row = RESULTS_HEADER_ROW + 1 + number
        assert sheet[f"A{row}"].value == origin.origin
        for column in ("ultimate", "ibnr"):
            assert str(sheet[f"{letter[column]}{row}"].value).startswith("="), column
        assert evaluate.value("Reserves", f"{letter['cdf']}{row}") == pytest.approx(
            origin.cdf, rel=1e-12
        )
        assert evaluate.value("Reserves", f"{letter['ultimate']}{row}") == pytest.approx(
            origin.ultimate, rel=1e-9
        )
        assert evaluate.value("Reserves", f"{letter['ibnr']}{row}") == pytest.approx(
            origin.ibnr, rel=1e-9, abs=1e-6
        )
    total = RESULTS_HEADER_ROW + 1 + len(result.origins)
    assert sheet[f"A{total}"].value == "Total"
    for column in ("latest", "ultimate", "ibnr"):
        assert sheet[f"{letter[column]}{total}"].value.startswith("=SUM(")
        assert evaluate.value("Reserves", f"{letter[column]}{total}") == pytest.approx(
            getattr(result.totals, column), rel=1e-9
        )


def test_the_header_block_says_who_what_and_whether_approved(raa):
    workbook, _ = workbook_of(chain_ladder_mack(raa, **JUDGMENT), raa)
    sheet = workbook["Reserves"]
    facts = {sheet[f"A{row}"].value: sheet[f"B{row}"].value for row in range(3, 14)}
    assert facts["Client"] == "Acme General Insurance plc"
    assert facts["Valuation date"] == "2025-12-31"
    assert facts["Method"] == "chain_ladder (volume average)"
    assert facts["Author"] == "Alice Fairweather"
    assert (facts["Status"], facts["Approved by"], facts["Approved on"]) == (
        "APPROVED",
        "Bob Castellano",
        "2026-01-15",
    )
    assert sheet["C1"].value == "APPROVED"
    draft, _ = workbook_of(chain_ladder_mack(raa), raa, WorkingPaperHeader(author="Alice"))
    facts = {draft["Reserves"][f"A{r}"].value: draft["Reserves"][f"B{r}"].value for r in (11, 12)}
    assert draft["Reserves"]["C1"].value == "DRAFT"
    assert facts == {"Status": "DRAFT", "Approved by": "not yet approved"}


def test_the_sheets_hold_the_triangle_ratios_selections_and_provenance(raa):
    result = chain_ladder_mack(raa, **JUDGMENT)
    workbook, _ = workbook_of(result, raa)
    assert workbook.sheetnames == [
        "Reserves",
        "Triangle",
        "Link ratios",
        SELECTIONS,
        "Development factors",
        "Options",
        "Provenance",
        "Excluded points",
    ]
    evaluate = FormulaEvaluator(workbook)
    triangle = workbook["Triangle"]
    assert [triangle.cell(row=2, column=c).value for c in (1, 2, 3)] == ["1981", 5012, 8269]
    # The incremental triangle below the cumulative one, as formulas.
    assert triangle["A13"].value == "Incremental"
    assert evaluate.value("Triangle", "C14") == 8269 - 5012
    ratios = workbook["Link ratios"]
    assert ratios["B3"].font.strike and evaluate.value("Link ratios", "B3") == pytest.approx(
        40.424528, rel=1e-6
    )
    assert not ratios["C3"].font.strike
    assert ratios["A13"].value.startswith("Left out of the averages")
    listed = list(ratios.iter_rows(min_row=15, max_col=4, values_only=True))
    ratio = pytest.approx(40.424528, rel=1e-6)
    assert listed == [("1982", "12-24", ratio, "excluded by the actuary")]
    selections = workbook[SELECTIONS]
    labels = [selections.cell(row=r, column=1).value for r in range(2, 10)]
    assert labels[0] == "Volume, all years" and labels[-1] == "Regression, all years"
    rows = {selections.cell(row=r, column=1).value: r for r in range(1, selections.max_row + 1)}
    assert selections.cell(row=rows["Source"], column=3).value == "override"
    assert selections.cell(row=rows["Reason"], column=3).value == "Market study benchmark"
    assert selections.cell(row=rows["Reason"], column=11).value == "Industry tail"
    provenance = dict(workbook["Provenance"].iter_rows(min_row=2, values_only=True))
    assert provenance["Triangle file"] == "raa.csv"


def test_the_working_paper_is_the_same_bytes_each_time(raa):
    result = chain_ladder_mack(raa, **JUDGMENT)
    assert workbook_of(result, raa)[1] == workbook_of(result, raa)[1]
