"""Exposure files: origin and exposure columns from CSV or Excel, matched to the triangle."""

import io

import pytest

from workflows.reserving import ExposureError, match_exposure, read_exposure

from .conftest import read


def test_csv_with_aliased_headers():
    exposure = read_exposure(b'Accident Year,Earned Premium\n2020,1000\n2021,"1,100"\n', "ep.csv")
    assert exposure.origins == ("2020", "2021")
    assert exposure.values == (1000.0, 1100.0)
    assert exposure.column == "Earned Premium"


def test_two_unnamed_columns_are_origin_and_exposure():
    assert read_exposure(b"AY,EP\n2020,5\n2021,6\n", "x.csv").as_dict() == {
        "2020": 5.0,
        "2021": 6.0,
    }


def test_excel():
    from openpyxl import Workbook

    workbook = Workbook()
    for row in (["origin", "premium", "note"], [2020, 1000, "a"], [2021, 1100, None]):
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    assert read_exposure(buffer.getvalue(), "ep.xlsx").as_dict() == {"2020": 1000.0, "2021": 1100.0}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"^exposure file 'x.csv': row 1, column A: the file 'x.csv' is empty$"),
        (
            b"origin,a,b\n2020,1,2\n",
            r"^row 1: an exposure file needs an origin column and an exposure",
        ),
        (b"origin,premium\n", r"^the exposure file 'x.csv' has no data rows$"),
        (
            b"origin,premium\n2020,abc\n",
            r"^exposure file 'x.csv': row 2, column B \('premium'\): 'abc' is not a number$",
        ),
        (
            b"origin,premium\n2020,-5\n",
            r"^exposure file 'x.csv': row 2, column B \('premium'\): the exposure -5 is negative$",
        ),
        (
            b"origin,premium\n2020,5\n2020,6\n",
            r"row 3, column A \('origin'\): origin 2020 is given twice \(first in row 2\)$",
        ),
    ],
)
def test_bad_exposure_files_name_the_row_and_column(content, message):
    with pytest.raises(ExposureError, match=message):
        read_exposure(content, "x.csv")


TRIANGLE = b"origin,3,6,9\n2019Q1,10,20,25\n2019Q2,11,21\n2019Q3,12\n"


def test_origins_match_as_written_or_by_period():
    triangle = read(TRIANGLE, "t.csv")
    exposure = read_exposure(b"origin,premium\n2019-Q3,3\n2019-Q1,1\n2019-Q2,2\n", "e.csv")
    assert match_exposure(exposure, triangle) == {"2019Q1": 1.0, "2019Q2": 2.0, "2019Q3": 3.0}


def test_origins_that_do_not_match_are_named():
    triangle = read(TRIANGLE, "t.csv")
    extra = read_exposure(b"origin,premium\n2019Q1,1\n2019Q2,2\n2019Q3,3\n2018Q4,9\n", "e.csv")
    with pytest.raises(
        ExposureError,
        match=r"^the exposure has origin\(s\) 2018Q4 that are not in the triangle \(its "
        r"origins: 2019Q1, 2019Q2, 2019Q3\)$",
    ):
        match_exposure(extra, triangle)
    missing = read_exposure(b"origin,premium\n2019Q1,1\n", "e.csv")
    with pytest.raises(
        ExposureError,
        match=r"^the exposure has no value for the triangle's origin\(s\) 2019Q2, 2019Q3$",
    ):
        match_exposure(missing, triangle)
