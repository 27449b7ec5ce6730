"""Result files: the CSV table, the Excel workbook and the PNG charts, byte for byte the same."""

import csv
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.reserving import (
    DevelopmentSelection,
    TailSelection,
    actual_vs_expected,
    bootstrap_odp,
    bornhuetter_ferguson,
    chain_ladder_mack,
    render_heatmap_png,
    render_histogram_png,
    render_reserve_chart_png,
    reserve_result_csv,
    reserve_result_xlsx,
    triangle_analysis,
)
from workflows.reserving.outputs.workbook import RESULTS_HEADER_ROW

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def raa_result(raa):
    return chain_ladder_mack(raa)


def rows_of(data: bytes):
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_reserve_csv_is_parseable(raa_result):
    rows = rows_of(reserve_result_csv(raa_result))
    assert len(rows) == 11
    assert rows[0]["origin"] == "1981"
    assert rows[-1] == {
        "origin": "Total",
        "development_age": "",
        "latest": "160987.00",
        "cdf": "1.323847",
        "ultimate": "213122.23",
        "ibnr": "52135.23",
        "mack_se": "26909.01",
        "cv": "0.516139",
    }
    assert rows[-2]["mack_se"] == "24566.29"


def test_expected_loss_methods_add_their_columns(raa):
    exposure = dict.fromkeys(raa.origins, 30000.0)
    result = bornhuetter_ferguson(raa, exposure=exposure, apriori_loss_ratio=0.6)
    rows = rows_of(reserve_result_csv(result))
    assert list(rows[0])[-3:] == ["exposure", "apriori_loss_ratio", "expected_ultimate"]
    assert rows[0]["mack_se"] == "" and rows[0]["apriori_loss_ratio"] == "0.600000"
    assert rows[-1]["exposure"] == "300000.00" and rows[-1]["expected_ultimate"] == "180000.00"


def test_the_bootstrap_adds_its_distribution(raa):
    result = bootstrap_odp(raa, random_seed=1, n_sims=300, percentiles=(50.0, 99.5))
    rows = rows_of(reserve_result_csv(result))
    assert list(rows[0])[-4:] == ["ibnr_mean", "ibnr_std", "p50", "p99.5"]
    total = rows[-1]
    assert float(total["p99.5"]) == pytest.approx(result.totals.percentiles[1][1], abs=0.005)
    width, height = png_size(render_histogram_png(result))
    assert width >= 600 and height >= 400


def test_reserve_xlsx_is_readable_with_a_totals_row(raa_result):
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(reserve_result_xlsx(raa_result)))
    assert workbook.sheetnames == ["Reserves", "Development factors", "Options"]
    # Below the working paper's header block (tests/reserving/test_workbook.py).
    rows = list(workbook["Reserves"].iter_rows(min_row=RESULTS_HEADER_ROW, values_only=True))
    assert rows[0][:3] == ("Origin", "Development age", "Latest")
    assert len(rows) == 12
    assert rows[-1][0] == "Total"
    # Ultimate and IBNR are formulas now; the figures without one stay values.
    assert rows[-1][5] == f"=SUM(F{RESULTS_HEADER_ROW + 1}:F{RESULTS_HEADER_ROW + 10})"
    assert rows[-1][6] == pytest.approx(26_909.01, abs=0.01)
    assert workbook["Reserves"].cell(row=RESULTS_HEADER_ROW + 11, column=1).font.bold
    factors = list(workbook["Development factors"].iter_rows(values_only=True))
    assert factors[0][:6] == ("Period", "From age", "To age", "LDF", "CDF", "Source")
    assert factors[-1][:3] == ("120-Ult", 120, "Ult")
    options = dict(workbook["Options"].iter_rows(min_row=2, values_only=True))
    assert options["average"] == "volume"
    assert options["tail_factor"] == "none"
    assert options["method"] == "chain_ladder"


def test_the_workbook_shows_exclusions_comparisons_and_simulations(raa, raa_result):
    from openpyxl import load_workbook

    selection = DevelopmentSelection(exclude=(("1982", 12),))
    result = bootstrap_odp(
        raa,
        random_seed=1,
        n_sims=200,
        selection=selection,
        tail=TailSelection("constant", 1.02, "benchmark"),
    )
    comparison = actual_vs_expected(result.to_dict(), raa_result.to_dict())
    from dataclasses import replace

    workbook = load_workbook(
        io.BytesIO(reserve_result_xlsx(replace(result, actual_vs_expected=comparison)))
    )
    assert workbook.sheetnames == [
        "Reserves",
        "Development factors",
        "Options",
        "Excluded points",
        "Actual vs expected",
        "Simulation",
    ]
    excluded = list(workbook["Excluded points"].iter_rows(values_only=True))
    assert excluded[1][:4] == ("1982", "12-24", 12, 24) and excluded[1][5] == "exclude"
    options = dict(workbook["Options"].iter_rows(min_row=2, values_only=True))
    assert json.loads(options["tail"]) == {
        "factor": 1.02,
        "method": "constant",
        "reason": "benchmark",
    }
    simulation = dict(workbook["Simulation"].iter_rows(min_row=2, values_only=True))
    assert simulation["n_sims"] == 200 and simulation["process_distribution"] == "gamma"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_reserve_chart_and_heatmap_are_pngs(raa, raa_result):
    width, height = png_size(render_reserve_chart_png(raa_result))
    assert width >= 600 and height >= 400
    width, height = png_size(render_heatmap_png(triangle_analysis(raa)))
    assert width >= 600 and height >= 400


def test_result_is_plain_json(raa_result):
    data = raa_result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert list(data) == [
        "method",
        "measure",
        "grain",
        "options",
        "origins",
        "totals",
        "development_factors",
        "excluded_points",
        "tail",
        "bootstrap",
        "actual_vs_expected",
        "warnings",
    ]
    assert data["totals"]["method"] == "chain_ladder" and data["totals"]["percentiles"] is None
    assert data["development_factors"][-1] == {
        "period": "120-Ult",
        "from_age": 120,
        "to_age": None,
        "ldf": 1.0,
        "cdf": 1.0,
        "source": "tail",
        "average": None,
        "reason": "no tail selected",
        "n_ratios": None,
        "computed": None,
        "sigma": None,
        "std_err": None,
    }
    assert raa_result.output_summary() == data


# --- determinism and import time --------------------------------------------------------


def test_outputs_are_byte_identical_for_the_same_input(raa, raa_result):
    assert reserve_result_csv(chain_ladder_mack(raa, tail_factor=1.02)) == reserve_result_csv(
        chain_ladder_mack(raa, tail_factor=1.02)
    )
    assert reserve_result_xlsx(raa_result) == reserve_result_xlsx(raa_result)
    assert render_reserve_chart_png(raa_result) == render_reserve_chart_png(raa_result)
    analysis = triangle_analysis(raa)
    assert render_heatmap_png(analysis) == render_heatmap_png(analysis)


_HASH_SCRIPT = """
import hashlib, workflows.reserving as r
t = r.read_triangle(r.sample_triangle_csv("raa"), "raa.csv", cumulative=True,
                    measure="incurred", allow_negative_development=True)
res = r.chain_ladder_mack(t)
boot = r.bootstrap_odp(t, random_seed=5, n_sims=300)
for data in (r.reserve_result_csv(res), r.reserve_result_xlsx(res),
             r.render_reserve_chart_png(res), r.render_heatmap_png(r.triangle_analysis(t)),
             r.reserve_result_csv(boot), r.render_histogram_png(boot)):
    print(hashlib.sha256(data).hexdigest())
"""


def _clean_environment() -> dict:
    environment = dict(os.environ)
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    return environment


def test_outputs_are_byte_identical_across_processes(raa, raa_result):
    completed = subprocess.run(
        [sys.executable, "-c", _HASH_SCRIPT],
        cwd=REPO_ROOT,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    boot = bootstrap_odp(raa, random_seed=5, n_sims=300)
    expected = [
        hashlib.sha256(data).hexdigest()
        for data in (
            reserve_result_csv(raa_result),
            reserve_result_xlsx(raa_result),
            render_reserve_chart_png(raa_result),
            render_heatmap_png(triangle_analysis(raa)),
            reserve_result_csv(boot),
            render_histogram_png(boot),
        )
    ]
    assert completed.stdout.split() == expected


def test_importing_the_package_loads_no_heavy_library_and_no_django():
    heavy = ("pandas", "numpy", "chainladder", "matplotlib", "openpyxl", "sklearn", "django")
    script = (
        "import sys, workflows.reserving; "
        f"loaded = [m for m in {heavy!r} if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=_clean_environment(), check=True
    )


def test_the_package_imports_no_django_and_no_app():
    """issue 24: the engine is plain Python; only ``library`` imports chainladder and pandas."""
    package = REPO_ROOT / "workflows" / "reserving"
    forbidden = ("django", "config", "engagements", "artefacts", "approvals", "audit")
    for path in package.rglob("*.py"):
        text = path.read_text()
        for name in forbidden:
            assert f"import {name}" not in text and f"from {name}" not in text, (path, name)
        assert "workflows.models" not in text and "workflows.implementations" not in text
        uses_library = "import chainladder" in text or "import pandas" in text
        assert uses_library == (path.name == "library.py"), path
