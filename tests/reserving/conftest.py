"""Fixtures of the reserving engine's tests: the standard triangles, read once per session.

These tests need no database: the engine is plain Python.
"""

import functools

import pytest

from workflows.reserving import read_triangle, sample_triangle_csv
from workflows.reserving.library import sample_columns, sample_names

# chainladder 0.10.1 and pandas warn about their own internals on every fit.
QUIET_CHAINLADDER = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning",
    "ignore::FutureWarning",
    "ignore::RuntimeWarning",
    "ignore:Some exclusions have been ignored:UserWarning",
    "ignore:.where. used without .out.:UserWarning",
)


def read(data: bytes, name: str = "triangle.csv", **options):
    """Read a triangle, cumulative paid unless told otherwise."""
    options.setdefault("cumulative", True)
    options.setdefault("measure", "paid")
    return read_triangle(data, name, **options)


@functools.cache
def sample(name: str, column: str | None = None, index: str | None = None, layout: str = "long"):
    """Return a shipped triangle read through the CSV reader (negative development allowed)."""
    return read(
        sample_csv(name, column, index, layout),
        f"{name}.csv",
        measure="incurred" if column and "ncur" in column else "paid",
        allow_negative_development=True,
    )


@functools.cache
def sample_csv(name: str, column=None, index=None, layout="long") -> bytes:
    return sample_triangle_csv(name, column=column, index=index, layout=layout)


@functools.cache
def shipped_triangles() -> tuple[tuple[str, str | None, str], ...]:
    """Return (sample, index, column) of every single triangle chainladder ships.

    Every sample except the three databases of company triangles (clrd, clrd2025,
    prism), every index of a sample, every column: 166 in chainladder 0.10.1. Three are
    not triangles (friedland_gl_self_insurer's one-age columns) and auto's commercial
    incurred column is empty: the tests that run every triangle leave those four out.
    """
    found = []
    for name in sample_names():
        columns, indexes = sample_columns(name)
        found += [(name, index, column) for index in indexes for column in columns]
    return tuple(found)


@pytest.fixture(scope="session")
def raa():
    # RAA really has a negative development (1982, 72 to 84 months: 15,599 to 15,496).
    return read(
        sample_triangle_csv("raa"), "raa.csv", measure="incurred", allow_negative_development=True
    )


@pytest.fixture(scope="session")
def genins():
    return read(sample_triangle_csv("genins"), "genins.csv")


def by_origin(result):
    return {origin.origin: origin for origin in result.origins}
