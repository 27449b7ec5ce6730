"""Reading and checking triangle files: layouts, grains, every problem named by row and column."""

import csv
import io
import itertools
import json

import pytest

from workflows.reserving import (
    CHECKS,
    TriangleError,
    chain_ladder_mack,
    sample_triangle_csv,
    sample_triangle_rows,
    triangle_analysis,
    validate_triangle,
)
from workflows.reserving.triangles import MSG_ZERO_VALUES

from .conftest import read as _read
from .conftest import sample, sample_csv

# --- inputs: layouts, incremental, Excel ------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "cumulative"), [("long", True), ("wide", True), ("long", False), ("wide", False)]
)
def test_layouts_and_incremental_input_give_the_same_result(raa, layout, cumulative):
    data = sample_triangle_csv("raa", layout=layout, cumulative=cumulative)
    triangle = _read(
        data, "raa.csv", cumulative=cumulative, measure="incurred", allow_negative_development=True
    )
    assert triangle.input_layout == layout
    assert triangle.values == raa.values and triangle.origins == raa.origins


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


CLIENT_ROWS = b"2020,12,100\n2020,24,150\n2021,12,110\n2021,24,160\n2022,12,120\n"


def test_a_client_file_with_camel_case_headers_is_read():
    triangle = _read(b"AccidentYear,DevMonths,PaidLoss\n" + CLIENT_ROWS, "client.csv")
    assert triangle.input_layout == "long"
    assert triangle.values == ((100.0, 150.0), (110.0, 160.0), (120.0,))


def test_a_column_mapping_reads_any_headers():
    data = b"Jahr,Monate,Zahlung\n" + CLIENT_ROWS
    mapping = {"origin": "JAHR", "development": "Monate", "value": "zahlung"}
    triangle = _read(data, "client.csv", columns=mapping)
    assert triangle.input_layout == "long" and triangle.origins == ("2020", "2021", "2022")
    assert triangle.values == ((100.0, 150.0), (110.0, 160.0), (120.0,))


def test_a_bad_column_mapping_names_every_problem_and_the_headers_found():
    data = b"Jahr,Monate,Zahlung\n" + CLIENT_ROWS
    mapping = {"origin": "Jahr", "development": "Jahr", "value": "Betrag"}
    with pytest.raises(TriangleError) as caught:
        _read(data, "client.csv", columns=mapping)
    assert [issue.message for issue in caught.value.issues] == [
        "row 1: the development column is mapped to 'Jahr', already the origin column; "
        "map each role to its own column",
        "row 1: the value column is mapped to 'Betrag', which is not a header of the file "
        "(headers found: 'Jahr', 'Monate', 'Zahlung')",
    ]
    assert "a data validation run lists them all" in str(caught.value)


def test_a_column_mapping_is_for_the_long_layout():
    mapping = {"origin": "a", "development": "b", "value": "c"}
    with pytest.raises(TriangleError, match=r"a column mapping .* is for the long layout"):
        _read(b"a,b,c\n" + CLIENT_ROWS, "client.csv", layout="wide", columns=mapping)


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
            r"cumulative value falls from 150 at age 24 to 140 at age 36\. To accept it and run "
            r"with a warning instead, set \"allow_negative_development\": true in input_params "
            r"\(REST API\), or tick “Allow negative development” in the reserving inputs of "
            r"the workflow run form \(admin\)$",
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


# --- grains: origins and development at different frequencies -----------------------------


@pytest.mark.parametrize(
    ("name", "column", "grain", "step", "months", "first"),
    [
        ("quarterly", "paid", "annual", 4, 3, "1995"),
        ("prism_oydq", "Paid", "annual", 4, 3, "2008"),
        ("prism_oydm", "Paid", "annual", 12, 1, "2008"),
        ("prism_oyds", "Paid", "annual", 2, 6, "2008"),
        ("prism_oqdm", "Paid", "quarterly", 3, 1, "2008Q1"),
        ("prism_osdq", "Paid", "semi-annual", 2, 3, "2008H1"),
        ("friedland_auto_freq_sev", "Reported Claims", "semi-annual", 1, 6, "2003H2"),
    ],
)
def test_origins_developed_at_a_finer_grain_read_as_a_staircase(
    name, column, grain, step, months, first
):
    """Each older origin has ``step`` more ages than the next, exactly as chainladder has it."""
    triangle = sample(name, column)
    origins, ages, values = sample_triangle_rows(name, column)
    assert (triangle.origin_grain, triangle.periods_per_origin) == (grain, step)
    assert triangle.development_months == months
    assert triangle.origins[0] == first and list(triangle.origins) == origins
    assert list(triangle.development_ages) == ages
    assert triangle.values == tuple(tuple(v for v in row if v is not None) for row in values)
    ends = [len(row) for row in triangle.values]
    immature = [end for end in ends if end < len(ages)]
    assert all(a - b == step for a, b in itertools.pairwise(immature))


def test_the_quarterly_sample_keeps_its_latest_diagonal():
    # chainladder's quarterly sample is valued at 1 quarter of 2006: 45, 41, …, 5, 1 ages.
    triangle = sample("quarterly", "paid")
    assert [len(row) for row in triangle.values] == list(range(45, 0, -4))
    assert triangle.latest_diagonal()[-1]["development_age"] == 3
    assert triangle.grain() == {
        "origin": "annual",
        "periods_per_origin": 4,
        "development_months": 3,
    }


QUARTERS_BY_YEAR = (
    "origin,development,value\n"
    "2019Q1,12,100\n2019Q1,24,160\n2019Q2,12,110\n2019Q3,12,120\n2019Q4,12,130\n"
    "2020Q1,12,140\n"
)


@pytest.mark.parametrize(
    ("content", "origins"),
    [
        (QUARTERS_BY_YEAR, "quarterly"),
        (
            "origin,3,6\n2019-01,10,20\n2019-02,11,21\n2019-03,12\n2019-04,13\n",
            "monthly",
        ),
        ("origin,12,24\n2019H1,10,20\n2019H2,11\n2020H1,12\n", "semi-annual"),
    ],
)
def test_origins_finer_than_the_development_are_refused_naming_the_grain(content, origins):
    with pytest.raises(TriangleError) as caught:
        _read(content.encode(), "grain.csv")
    message = str(caught.value)
    assert message.startswith(
        "row 2, column A ('origin'): the grain combination is not supported: "
    )
    assert (
        f"{origins} origins with development ages that each span several origin periods" in message
    )
    assert "The origin grain must be at least as coarse as the development grain" in message
    assert [issue.check for issue in caught.value.issues] == ["triangle_shape"]


def test_unlabelled_origins_finer_than_the_development_are_refused():
    # Origins A1…A8 are quarters developed in years: four origins share each count.
    rows = ["origin,1,2,3"]
    counts = [3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1]
    for i, count in enumerate(counts):
        rows.append(",".join([f"A{i + 1:02d}", *["10"] * count]))
    with pytest.raises(TriangleError, match="the grain combination is not supported"):
        _read("\n".join(rows).encode(), "grain.csv")


def test_quarter_labels_sort_by_period_in_any_spelling():
    content = "origin,3,6,9\nQ3 2019,30\n2019-Q1,10,20,25\n2019q2,11,21\n"
    triangle = _read(content.encode(), "quarters.csv")
    assert triangle.origins == ("2019-Q1", "2019q2", "Q3 2019")
    assert (triangle.origin_grain, triangle.periods_per_origin) == ("quarterly", 1)


def test_a_missing_origin_period_is_named():
    content = "origin,12,24,36\n2019,100,150,160\n2020,110,170\n2022,120\n"
    with pytest.raises(
        TriangleError,
        match=r"^row 4, column A \('origin'\): the annual origins jump from 2020 to 2022: origin "
        r"2021 is missing",
    ):
        _read(content.encode(), "gap.csv")


def test_older_origins_whose_early_development_was_not_recorded_are_read():
    """xyz's 1998-2000 origins start at ages 36, 24 and 12: recording began in 2000."""
    triangle = sample("xyz", "Incurred")
    assert triangle.values[0][:3] == (None, None, 11171.0)
    assert triangle.values[1][0] is None and triangle.values[1][1] is not None
    assert triangle.values[2][0] is not None
    assert any(
        w.startswith("row ") and "origin 1998 has no values before development age 36" in w
        for w in triangle.warnings
    )
    analysis = triangle_analysis(triangle)
    assert analysis["age_to_age"][0]["factors"][:2] == [None, None]
    assert chain_ladder_mack(triangle).totals.ibnr > 0


def test_a_late_start_is_refused_for_incremental_values():
    content = "origin,12,24,36\n2019,,50,10\n2020,100,40\n2021,110\n"
    with pytest.raises(
        TriangleError,
        match=r"^row 2, column C \('24'\): origin 2019 has no values before development age 24: "
        r"with incremental values its cumulative amounts cannot be known",
    ):
        _read(content.encode(), "late.csv", cumulative=False)


def test_validation_report_shows_the_grain():
    report = validate_triangle(
        sample_csv("quarterly", "paid"),
        "quarterly.csv",
        cumulative=True,
        measure="paid",
        allow_negative_development=True,
    )
    assert report["valid"] is True
    assert report["grain"] == {"origin": "annual", "periods_per_origin": 4, "development_months": 3}
