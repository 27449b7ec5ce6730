"""Tests of the reserving numerical core against published results and by hand.

Published figures used here:

* GenIns, the Taylor & Ashe (1983) triangle, is the example of T. Mack (1993),
  "Distribution-free calculation of the standard error of chain ladder reserve
  estimates", ASTIN Bulletin 23(2), 213-225: chain ladder factors 3.491 ... 1.018,
  reserves 94,634 ... 4,625,811 with total 18,680,856, and standard errors shown as
  percentages of the reserves (80%, 26%, 19%, 27%, 29%, 26%, 22%, 23%, 29%; total 13%),
  i.e. 75,535 ... 1,363,155 with total 2,447,095.
* RAA, general liability from the RAA Historical Loss Development Study (1991), is the
  example of T. Mack (1994), "Measuring the variability of chain ladder reserve
  estimates", CAS Forum Spring 1994, and of the R ChainLadder package's
  MackChainLadder documentation: total IBNR 52,135, total standard error 26,909 (CV 52%),
  origin 1990 IBNR 16,339 with standard error 24,566 (150%).

Both use Mack's rule for the last variance parameter, which is what the module uses.
Published amounts are rounded to whole units, so the tolerance is one unit.
"""

import csv
import hashlib
import io
import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.reserving import (
    SAMPLE_TRIANGLES,
    TriangleError,
    chain_ladder_mack,
    read_triangle,
    render_heatmap_png,
    render_reserve_chart_png,
    reserve_result_csv,
    reserve_result_xlsx,
    sample_triangle_csv,
    sample_triangle_rows,
    triangle_analysis,
    validate_triangle,
)
MSG_NO_STANDARD_ERROR = "x"
from workflows.reserving.triangles import CHECKS, MSG_ZERO_VALUES

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Mack (1993), Taylor & Ashe data: reserve and standard error by accident year 2..10
# (chainladder labels the years 2002..2010).
GENINS_PUBLISHED = [
    ("2002", 94_634, 75_535, 0.80),
    ("2003", 469_511, 121_699, 0.26),
    ("2004", 709_638, 133_549, 0.19),
    ("2005", 984_889, 261_406, 0.27),
    ("2006", 1_419_459, 411_010, 0.29),
    ("2007", 2_177_641, 558_317, 0.26),
    ("2008", 3_920_301, 875_328, 0.22),
    ("2009", 4_278_972, 971_258, 0.23),
    ("2010", 4_625_811, 1_363_155, 0.29),
]
GENINS_PUBLISHED_LDFS = [3.491, 1.747, 1.457, 1.174, 1.104, 1.086, 1.054, 1.077, 1.018]

# Mack (1994) / R ChainLadder MackChainLadder(RAA): IBNR and standard error by origin.
RAA_PUBLISHED = [
    ("1982", 154, 206),
    ("1983", 617, 623),
    ("1984", 1_636, 747),
    ("1985", 2_747, 1_469),
    ("1986", 3_649, 2_002),
    ("1987", 5_435, 2_209),
    ("1988", 10_907, 5_358),
    ("1989", 10_650, 6_333),
    ("1990", 16_339, 24_566),
]
RAA_PUBLISHED_LDFS = [2.999, 1.624, 1.271, 1.172, 1.113, 1.042, 1.033, 1.017, 1.009]


def _read(data: bytes, name: str = "triangle.csv", **options):
    options.setdefault("cumulative", True)
    options.setdefault("measure", "paid")
    return read_triangle(data, name, **options)


@pytest.fixture(scope="module")
def raa():
    # RAA really has a negative development (1982, 72 to 84 months: 15,599 to 15,496).
    return _read(
        sample_triangle_csv("raa"), "raa.csv", measure="incurred", allow_negative_development=True
    )


@pytest.fixture(scope="module")
def genins():
    return _read(sample_triangle_csv("genins"), "genins.csv")


@pytest.fixture(scope="module")
def raa_result(raa):
    return chain_ladder_mack(raa)


@pytest.fixture(scope="module")
def genins_result(genins):
    return chain_ladder_mack(genins)


def _by_origin(result):
    return {origin.origin: origin for origin in result.origins}


# --- published results ------------------------------------------------------------------


def test_genins_totals_match_mack_1993(genins_result):
    totals = genins_result.totals
    assert totals.ibnr == pytest.approx(18_680_856, abs=1)
    assert totals.mack_se == pytest.approx(2_447_095, abs=1)
    assert round(totals.cv, 2) == 0.13


@pytest.mark.parametrize(("origin", "reserve", "standard_error", "cv"), GENINS_PUBLISHED)
def test_genins_by_origin_matches_mack_1993(genins_result, origin, reserve, standard_error, cv):
    row = _by_origin(genins_result)[origin]
    assert row.ibnr == pytest.approx(reserve, abs=1)
    assert row.mack_se == pytest.approx(standard_error, abs=1)
    assert round(row.cv, 2) == cv


def test_genins_factors_match_mack_1993(genins_result):
    ldfs = [factor.ldf for factor in genins_result.development_factors[:-1]]
    assert [round(ldf, 3) for ldf in ldfs] == GENINS_PUBLISHED_LDFS


def test_raa_totals_match_mack_1994(raa_result):
    totals = raa_result.totals
    assert totals.latest == 160_987
    assert totals.ibnr == pytest.approx(52_135, abs=1)
    assert totals.mack_se == pytest.approx(26_909, abs=1)
    assert round(totals.cv, 2) == 0.52


@pytest.mark.parametrize(("origin", "ibnr", "standard_error"), RAA_PUBLISHED)
def test_raa_by_origin_matches_mack_1994(raa_result, origin, ibnr, standard_error):
    row = _by_origin(raa_result)[origin]
    assert row.ibnr == pytest.approx(ibnr, abs=1)
    assert row.mack_se == pytest.approx(standard_error, abs=1)


def test_raa_factors_and_fully_developed_origin(raa_result):
    ldfs = [factor.ldf for factor in raa_result.development_factors[:-1]]
    assert [round(ldf, 3) for ldf in ldfs] == RAA_PUBLISHED_LDFS
    first = _by_origin(raa_result)["1981"]
    assert (first.ibnr, first.mack_se, first.cv, first.cdf) == (0.0, 0.0, None, 1.0)
    assert _by_origin(raa_result)["1990"].cv == pytest.approx(1.50, abs=0.005)


def test_result_is_plain_json(raa_result):
    data = raa_result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["options"] == {
        "average": "volume",
        "tail_factor": None,
        "sigma_interpolation": "mack",
        "library": data["options"]["library"],
    }
    summary = raa_result.output_summary()
    assert "origins" not in summary
    assert summary["totals"]["ibnr"] == pytest.approx(52_135.23, abs=0.01)
    assert summary["development_factors"][-1] == {
        "period": "120-Ult",
        "from_age": 120,
        "to_age": None,
        "ldf": 1.0,
        "cdf": 1.0,
    }


# --- inputs: layouts, incremental, Excel ------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "cumulative"), [("long", True), ("wide", True), ("long", False), ("wide", False)]
)
def test_layouts_and_incremental_input_give_the_same_result(raa_result, layout, cumulative):
    data = sample_triangle_csv("raa", layout=layout, cumulative=cumulative)
    triangle = _read(
        data, "raa.csv", cumulative=cumulative, measure="incurred", allow_negative_development=True
    )
    assert triangle.input_layout == layout
    assert reserve_result_csv(chain_ladder_mack(triangle)) == reserve_result_csv(raa_result)


def test_excel_input_gives_the_same_triangle(raa):
    from openpyxl import Workbook

    origins, ages, values = sample_triangle_rows("raa")
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Accident Year", *ages])
    for origin, row in zip(origins, values, strict=True):
        sheet.append([int(origin), *row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    triangle = _read(
        buffer.getvalue(), "raa.xlsx", measure="incurred", allow_negative_development=True
    )
    assert triangle.input_layout == "wide"
    assert triangle.origins == raa.origins
    assert triangle.development_ages == raa.development_ages
    assert triangle.values == raa.values


def test_long_header_aliases_are_matched_case_insensitively():
    data = (
        b"Accident Year;Dev Age;PAID\n"
        b"2020;12;100\n2020;24;150\n2021;12;110\n2021;24;160\n2022;12;120\n"
    )
    triangle = _read(data, "paid.csv")
    assert triangle.input_layout == "long"
    assert triangle.origins == ("2020", "2021", "2022")
    assert triangle.values == ((100.0, 150.0), (110.0, 160.0), (120.0,))


@pytest.mark.parametrize(("measure", "first_value"), [("paid", 60.0), ("incurred", 100.0)])
def test_long_layout_takes_the_column_of_the_measure(measure, first_value):
    data = (
        b"origin,development,paid,incurred\n"
        b"2020,12,60,100\n2020,24,90,150\n2021,12,70,110\n2021,24,95,160\n2022,12,80,120\n"
    )
    triangle = _read(data, "both.csv", measure=measure)
    assert triangle.measure == measure
    assert triangle.values[0][0] == first_value


def test_wide_headers_with_units_and_thousands_separators():
    data = b'origin,12m,24m\n2020,"1,000",1500\n2021,1100,"1,650.5"\n2022,1200,\n'
    triangle = _read(data, "wide.csv", layout="wide")
    assert triangle.development_ages == (12, 24)
    assert triangle.values == ((1000.0, 1500.0), (1100.0, 1650.5), (1200.0,))
    assert triangle.latest_diagonal()[0] == {
        "origin": "2020",
        "development_age": 24,
        "value": 1500.0,
    }


@pytest.mark.parametrize("name", sorted(SAMPLE_TRIANGLES))
def test_every_sample_triangle_reads_and_reserves(name):
    triangle = _read(sample_triangle_csv(name), f"{name}.csv", allow_negative_development=True)
    result = chain_ladder_mack(triangle)
    assert result.totals.ibnr > 0
    assert result.totals.mack_se > 0


def test_sample_export_is_long_and_wide_csv():
    long_rows = list(csv.reader(io.StringIO(sample_triangle_csv("genins").decode())))
    assert long_rows[:3] == [
        ["origin", "development", "value"],
        ["2001", "12", "357848"],
        ["2001", "24", "1124788"],
    ]
    assert len(long_rows) == 1 + 55
    wide = sample_triangle_csv("genins", layout="wide", cumulative=False)
    wide_rows = list(csv.reader(io.StringIO(wide.decode())))
    assert wide_rows[0] == ["origin", *[str(12 * k) for k in range(1, 11)]]
    assert wide_rows[1][:3] == ["2001", "357848", "766940"]  # Taylor & Ashe increments
    assert wide_rows[-1] == ["2010", "344014", *[""] * 9]
    with pytest.raises(ValueError, match="unknown sample triangle 'nope'"):
        sample_triangle_csv("nope")


# --- bad files ------------------------------------------------------------------------

WIDE_OK = "origin,12,24,36,48\n2019,100,150,165,170\n2020,110,160,176\n2021,120,185\n2022,130\n"


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        (
            "origin,12,24,36\n2020,100,abc,120\n2021,110,150\n2022,120\n",
            {},
            r"^row 2, column C \('24'\): 'abc' is not a number$",
        ),
        (
            "origin,development,value\n2020,12,100\n2020,24,1o5\n2021,12,110\n2022,12,90\n",
            {},
            r"^row 3, column C \('value'\): '1o5' is not a number$",
        ),
        (
            "origin,development,value\n2020,twelve,100\n2021,12,110\n2022,12,90\n",
            {},
            r"^row 2, column B \('development'\): development age 'twelve' is not a number$",
        ),
        (
            "origin,12,24,36,48\n2019,100,,165,170\n2020,110,160,176\n2021,120,185\n2022,130\n",
            {},
            r"^row 2, column D \('36'\): ragged row: origin 2019 has a value at development "
            r"age 36 after an empty cell at age 24 \(column C\)",
        ),
        (
            "origin,12,24,36,48\n2019,100,150,165,170\n2020,110,160,176\n2021,120,185,190\n"
            "2022,130\n",
            {},
            r"^row 4, column D \('36'\): ragged row: origin 2021 has a value at development "
            r"age 36, beyond the latest diagonal \(its last allowed age is 24\)$",
        ),
        (
            "origin,12,24\n2020,100,150,170\n2021,110\n2022,120\n",
            {},
            r"^row 2, column D: ragged row: value '170' lies beyond the last development age",
        ),
        (
            "origin,12,24,36,48\n2019,100,150,165,170\n2020,110,160,176\n2021,120\n2022,130\n",
            {},
            r"^row 4, column C \('24'\): origin 2021 has no value at development age 24, "
            r"which the latest diagonal requires$",
        ),
        (
            "origin,development,value\n2020,12,100\n2020,24,150\n2021,12,110\n2022,12,120\n"
            "2020,24,155\n",
            {},
            r"^row 6, column B \('development'\): duplicate cell: origin 2020 at development "
            r"age 24 was already given in row 3$",
        ),
        (
            "origin,12,24\n2020,100,150\n2021,110\n2020,120\n",
            {},
            r"^row 4, column A \('origin'\): duplicate origin 2020 \(already in row 2\)$",
        ),
        (
            "origin,12,24,24\n2020,100,150,150\n2021,110\n2022,120\n",
            {},
            r"^row 1, column D \('24'\): duplicate development age 24 \(already in column C\)$",
        ),
        (
            "origin,12,24\n2020,100,150\n2021,110\n",
            {},
            r"^rows 2-3, column A \('origin'\): only 2 origin\(s\) \(2020, 2021\); "
            r"at least 3 are needed$",
        ),
        (
            "origin,12,24,36\n2020,100,150,140\n2021,110,160\n2022,120\n",
            {},
            r"^row 2, column D \('36'\): negative development for origin 2020: the "
            r"cumulative value falls from 150 at age 24 to 140 at age 36 "
            r"\(pass allow_negative_development=True to accept it\)$",
        ),
        (
            "origin,12,24,36\n2020,100,50,-10\n2021,110,40\n2022,120\n",
            {"cumulative": False},
            r"^row 2, column D \('36'\): negative development for origin 2020: the "
            r"incremental value -10 at age 36 is negative",
        ),
        (
            "origin,development,value\n2020,12,100\n2021,24,110\n2022,12,120\n",
            {},
            r"^row 3, column B \('development'\): ragged row: origin 2021 has a value at "
            r"development age 24 after an empty cell at age 12 \(column B\)$",
        ),
        (
            "origin,development,value\n2020,12,100\n2020,24,150\n2020,36,160\n2021,12,110\n"
            "2022,12,120\n",
            {},
            r"^row 5, column B \('development'\): origin 2021 stops at development age 12; "
            r"the latest diagonal requires a value at age 24$",
        ),
        (
            "origin,development,value\n2020,12,100\n,24,150\n2021,12,110\n2022,12,120\n",
            {},
            r"^row 3, column A \('origin'\): the origin is empty$",
        ),
        (
            "origin,development,value\n2020,12,100\n2020,,150\n2021,12,110\n2022,12,120\n",
            {},
            r"^row 3, column B \('development'\): the development age is empty$",
        ),
    ],
    ids=[
        "text-in-wide-cell",
        "text-in-long-value",
        "text-as-development-age",
        "value-after-gap",
        "value-beyond-diagonal",
        "value-beyond-last-column",
        "missing-latest-diagonal",
        "duplicate-long-cell",
        "duplicate-wide-origin",
        "duplicate-wide-age",
        "fewer-than-3-origins",
        "negative-cumulative-drop",
        "negative-increment",
        "long-row-after-gap",
        "long-missing-diagonal",
        "empty-origin",
        "empty-development-age",
    ],
)
def test_bad_files_name_the_row_and_column(content, options, message):
    with pytest.raises(TriangleError, match=message):
        _read(content.encode(), "bad.csv", **options)


def test_negative_development_is_a_warning_when_allowed():
    content = "origin,12,24,36\n2020,100,150,140\n2021,110,160\n2022,120\n"
    triangle = _read(content.encode(), "drop.csv", allow_negative_development=True)
    assert triangle.values[0] == (100.0, 150.0, 140.0)
    assert triangle.warnings == (
        "row 2, column D ('36'): negative development for origin 2020: the cumulative value "
        "falls from 150 at age 24 to 140 at age 36",
    )


@pytest.mark.parametrize("content", [b"", b"  \n\n", b",,,\n"])
def test_empty_file(content):
    with pytest.raises(TriangleError, match=r"^row 1, column A: the file 'empty.csv' is empty$"):
        _read(content, "empty.csv")


def test_header_without_data_rows():
    with pytest.raises(TriangleError, match=r"^row 1, column A: .* has a header row but no data"):
        _read(b"origin,12,24\n", "header.csv")


@pytest.mark.parametrize(
    "content", [b"PK\x03\x04 not really a zip", b"just some bytes that are not a workbook"]
)
def test_unreadable_excel(content):
    with pytest.raises(TriangleError, match=r"^'broken.xlsx' is not a readable Excel \(.xlsx\)"):
        _read(content, "broken.xlsx")


def test_old_excel_format_is_refused():
    with pytest.raises(TriangleError, match=r"old Excel \(.xls\) file; save it as .xlsx or CSV"):
        _read(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "old.xls")


def test_excel_text_in_number_names_the_cell():
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for row in (["origin", 12, 24], [2020, 100, "n/a"], [2021, 110], [2022, 120]):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    with pytest.raises(TriangleError, match=r"^row 2, column C \('24'\): 'n/a' is not a number$"):
        _read(buffer.getvalue(), "text.xlsx")


def test_long_layout_requested_without_long_columns():
    with pytest.raises(
        TriangleError, match=r"^row 1: the long layout needs .*missing development, value"
    ):
        _read(WIDE_OK.encode(), "wide.csv", layout="long")


def test_error_lists_every_problem_of_the_failing_check():
    content = "origin,12,24\n2020,x,150\n2021,y\n2022,z\n"
    with pytest.raises(TriangleError, match=r"\(and 2 more problem\(s\)") as caught:
        _read(content.encode(), "many.csv")
    assert [issue.check for issue in caught.value.issues] == ["numeric_values"] * 3
    assert isinstance(caught.value, ValueError)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="layout must be one of long, wide, auto, not 'tall'"):
        _read(WIDE_OK.encode(), layout="tall")
    with pytest.raises(ValueError, match="measure must be one of paid, incurred"):
        _read(WIDE_OK.encode(), measure="earned")


# --- validation report ------------------------------------------------------------------


def test_validation_report_of_a_valid_triangle():
    report = validate_triangle(
        sample_triangle_csv("raa", layout="wide"),
        "raa.csv",
        cumulative=True,
        measure="incurred",
        allow_negative_development=True,
    )
    assert report["valid"] is True
    assert report["layout"] == "wide"
    assert [check["name"] for check in report["checks"]] == list(CHECKS)
    assert {check["status"] for check in report["checks"]} == {"passed"}
    assert report["origin_count"] == 10
    assert report["development_age_count"] == 10
    assert report["cell_count"] == 55
    assert report["origins"][0] == "1981"
    assert report["development_ages"][-1] == 120
    assert report["latest_diagonal"][-1] == {
        "origin": "1990",
        "development_age": 12,
        "value": 2063.0,
    }
    assert report["latest_total"] == 160_987
    assert len(report["warnings"]) == 1  # the RAA 1982 negative development
    assert json.loads(json.dumps(report)) == report


def test_validation_report_of_a_bad_file_skips_later_checks():
    content = "origin,development,value\n2020,12,100\n2020,12,100\n2021,12,110\n"
    report = validate_triangle(content.encode(), "dup.csv", cumulative=True, measure="paid")
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert statuses == {
        "file_readable": "passed",
        "numeric_values": "passed",
        "unique_cells": "failed",
        "minimum_size": "skipped",
        "triangle_shape": "skipped",
        "non_negative_development": "skipped",
    }
    assert report["valid"] is False
    assert report["errors"] == [
        "row 3, column B ('development'): duplicate cell: origin 2020 at development age 12 "
        "was already given in row 2"
    ]
    assert report["origins"] == []


def test_zero_values_are_reported_as_warnings():
    content = "origin,12,24,36,48\n2019,0,150,165,170\n2020,110,160,176\n2021,120,185\n2022,130\n"
    triangle = _read(content.encode(), "zero.csv")
    assert triangle.warnings == (MSG_ZERO_VALUES.format(origin="2019", age="12"),)
    analysis = triangle_analysis(triangle)
    assert analysis["age_to_age"][0]["factors"][0] is None
    assert analysis["averages"]["volume"][0] == pytest.approx((160 + 185) / (110 + 120))


def test_factors_to_a_zero_are_left_out_like_chainladder_does():
    content = "origin,12,24,36,48\n2019,100,150,165,170\n2020,110,0,176\n2021,120,185\n2022,130\n"
    triangle = _read(content.encode(), "zero.csv", allow_negative_development=True)
    analysis = triangle_analysis(triangle)
    assert analysis["age_to_age"][1]["factors"][:2] == [None, None]
    volume = analysis["averages"]["volume"]
    assert volume[0] == pytest.approx((150 + 185) / (100 + 120))
    ldfs = [factor.ldf for factor in chain_ladder_mack(triangle).development_factors[:-1]]
    assert ldfs == pytest.approx(volume)


# --- age-to-age factors and averages, by hand -------------------------------------------

# A small triangle whose factors are easy to check by hand.
HAND = "origin,12,24,36,48\n2020,100,150,165,170\n2021,200,260,299\n2022,300,420\n2023,400\n"


@pytest.fixture(scope="module")
def hand():
    return _read(HAND.encode(), "hand.csv")


def test_triangle_analysis_by_hand(hand):
    analysis = triangle_analysis(hand)
    assert [period["label"] for period in analysis["periods"]] == ["12-24", "24-36", "36-48"]
    assert analysis["age_to_age"][1] == {"origin": "2021", "factors": [1.3, 1.15, None]}
    assert analysis["factor_counts"] == [3, 2, 1]
    simple = analysis["averages"]["simple"]
    volume = analysis["averages"]["volume"]
    # 12-24: factors 1.5, 1.3, 1.4; 24-36: 1.1, 1.15; 36-48: 170/165.
    assert simple == pytest.approx([(1.5 + 1.3 + 1.4) / 3, (1.1 + 1.15) / 2, 170 / 165])
    assert volume == pytest.approx([830 / 600, 464 / 410, 170 / 165])
    assert simple[0] != pytest.approx(volume[0])
    assert analysis["cumulative_factors"]["volume"] == pytest.approx(
        [830 / 600 * 464 / 410 * 170 / 165, 464 / 410 * 170 / 165, 170 / 165, 1.0]
    )


@pytest.mark.parametrize(
    ("average", "expected"),
    [
        ("volume", [830 / 600, 464 / 410, 170 / 165]),
        ("simple", [1.4, 1.125, 170 / 165]),
        # Regression through the origin: sum(C_j * C_j+1) / sum(C_j ** 2).
        (
            "regression",
            [
                (100 * 150 + 200 * 260 + 300 * 420) / (100**2 + 200**2 + 300**2),
                (150 * 165 + 260 * 299) / (150**2 + 260**2),
                170 / 165,
            ],
        ),
    ],
)
def test_averages_select_the_chain_ladder_factors(hand, average, expected):
    result = chain_ladder_mack(hand, average=average)
    assert result.options["average"] == average
    ldfs = [factor.ldf for factor in result.development_factors]
    assert ldfs == pytest.approx([*expected, 1.0])
    latest_2023 = 400
    ultimate = latest_2023 * math.prod(expected)
    assert _by_origin(result)["2023"].ultimate == pytest.approx(ultimate)
    assert _by_origin(result)["2023"].cdf == pytest.approx(math.prod(expected))


def test_simple_and_volume_reserves_differ(hand):
    volume = chain_ladder_mack(hand, average="volume").totals.ibnr
    simple = chain_ladder_mack(hand, average="simple").totals.ibnr
    # 2021: 299 × 170/165; 2022: 420 × f24 × 170/165; 2023: 400 × f12 × f24 × 170/165.
    expected_volume = (
        299 * 170 / 165
        - 299
        + 420 * 464 / 410 * 170 / 165
        - 420
        + 400 * 830 / 600 * 464 / 410 * 170 / 165
        - 400
    )
    expected_simple = (
        299 * 170 / 165 - 299 + 420 * 1.125 * 170 / 165 - 420 + 400 * 1.4 * 1.125 * 170 / 165 - 400
    )
    assert volume == pytest.approx(expected_volume)
    assert simple == pytest.approx(expected_simple)


def test_tail_factor_scales_cdf_and_ultimate(raa, raa_result):
    with_tail = chain_ladder_mack(raa, tail_factor=1.05)
    assert with_tail.options["tail_factor"] == 1.05
    for plain, tailed in zip(raa_result.origins, with_tail.origins, strict=True):
        assert tailed.cdf == pytest.approx(plain.cdf * 1.05)
        assert tailed.ultimate == pytest.approx(plain.ultimate * 1.05)
        assert tailed.latest == plain.latest
    assert _by_origin(with_tail)["1981"].ibnr == pytest.approx(18_834 * 0.05)
    assert with_tail.totals.ibnr == pytest.approx(
        raa_result.totals.ibnr + 0.05 * raa_result.totals.ultimate
    )
    tail = with_tail.development_factors[-1]
    assert (tail.period, tail.ldf, tail.cdf) == (
        "120-Ult",
        pytest.approx(1.05),
        pytest.approx(1.05),
    )
    assert with_tail.development_factors[0].cdf == pytest.approx(
        raa_result.development_factors[0].cdf * 1.05
    )
    assert with_tail.totals.mack_se > raa_result.totals.mack_se


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"average": "median"}, "average must be one of volume, simple, regression"),
        ({"tail_factor": 0}, "tail_factor must be a finite number above 0"),
        ({"tail_factor": float("nan")}, "tail_factor must be a finite number above 0"),
    ],
)
def test_bad_reserve_options(hand, options, message):
    with pytest.raises(ValueError, match=message):
        chain_ladder_mack(hand, **options)


def test_standard_error_needs_enough_periods():
    # Three ages: Mack's rule for the last sigma needs two earlier ones.
    triangle = _read(b"origin,12,24,36\n2020,100,150,165\n2021,110,160\n2022,120\n", "small.csv")
    result = chain_ladder_mack(triangle)
    assert _by_origin(result)["2021"].mack_se is None
    assert result.totals.mack_se is None
    assert result.totals.ibnr > 0
    assert MSG_NO_STANDARD_ERROR.format(origin="2021") in result.warnings


# --- result files ---------------------------------------------------------------------


def test_reserve_csv_is_parseable(raa_result):
    rows = list(csv.DictReader(io.StringIO(reserve_result_csv(raa_result).decode())))
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


def test_reserve_xlsx_is_readable_with_a_totals_row(raa_result):
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(reserve_result_xlsx(raa_result)))
    assert workbook.sheetnames == ["Reserves", "Development factors", "Options"]
    rows = list(workbook["Reserves"].iter_rows(values_only=True))
    assert rows[0][:3] == ("Origin", "Development age", "Latest")
    assert len(rows) == 12
    assert rows[-1][0] == "Total"
    assert rows[-1][5] == pytest.approx(52_135.23, abs=0.01)
    assert rows[-1][6] == pytest.approx(26_909.01, abs=0.01)
    assert workbook["Reserves"].cell(row=12, column=1).font.bold
    factors = list(workbook["Development factors"].iter_rows(values_only=True))
    assert factors[-1][:3] == ("120-Ult", 120, "Ult")
    options = dict(workbook["Options"].iter_rows(min_row=2, values_only=True))
    assert options["average"] == "volume"
    assert options["tail_factor"] == "none"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_reserve_chart_is_a_png(raa_result):
    width, height = _png_size(render_reserve_chart_png(raa_result))
    assert width >= 600
    assert height >= 400


def test_heatmap_is_a_png(raa):
    width, height = _png_size(render_heatmap_png(triangle_analysis(raa)))
    assert width >= 600
    assert height >= 400


# --- determinism and import time --------------------------------------------------------


def test_csv_output_is_byte_identical_for_the_same_input(raa):
    first = reserve_result_csv(chain_ladder_mack(raa, tail_factor=1.02))
    second = reserve_result_csv(chain_ladder_mack(raa, tail_factor=1.02))
    assert first == second


def test_xlsx_and_png_are_byte_identical_within_a_process(raa, raa_result):
    assert reserve_result_xlsx(raa_result) == reserve_result_xlsx(raa_result)
    assert render_reserve_chart_png(raa_result) == render_reserve_chart_png(raa_result)
    analysis = triangle_analysis(raa)
    assert render_heatmap_png(analysis) == render_heatmap_png(analysis)


_HASH_SCRIPT = """
import hashlib, workflows.reserving as r
t = r.read_triangle(r.sample_triangle_csv("raa"), "raa.csv", cumulative=True,
                    measure="incurred", allow_negative_development=True)
res = r.chain_ladder_mack(t)
for data in (r.reserve_result_csv(res), r.reserve_result_xlsx(res),
             r.render_reserve_chart_png(res), r.render_heatmap_png(r.triangle_analysis(t))):
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
    expected = [
        hashlib.sha256(data).hexdigest()
        for data in (
            reserve_result_csv(raa_result),
            reserve_result_xlsx(raa_result),
            render_reserve_chart_png(raa_result),
            render_heatmap_png(triangle_analysis(raa)),
        )
    ]
    assert completed.stdout.split() == expected


def test_importing_the_module_loads_no_heavy_library():
    heavy = ("pandas", "numpy", "chainladder", "matplotlib", "openpyxl", "sklearn")
    script = (
        "import sys, workflows.reserving; "
        f"loaded = [m for m in {heavy!r} if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=_clean_environment(), check=True
    )
