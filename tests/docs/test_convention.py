"""The example convention's own rules: markers, templates and subset matching."""

import pytest

from tests.docs.markdown import read_blocks
from tests.docs.templates import Mismatch, expand, match_json, match_text


@pytest.fixture
def page(tmp_path):
    """Write a Markdown page and return its path."""

    def write(text):
        path = tmp_path / "page.md"
        path.write_text(text)
        return path

    return write


def test_a_marker_belongs_to_the_block_after_it(page):
    blocks = read_blocks(page("Text.\n\n<!-- not-run: a server -->\n\n```sh\nmake run\n```\n"))
    assert [(b.language, b.marker, b.marker_value, b.lines) for b in blocks] == [
        ("sh", "not-run", "a server", ("make run",))
    ]


def test_a_marker_without_its_block_is_refused(page):
    with pytest.raises(ValueError, match="is not followed by a fenced block"):
        read_blocks(page("<!-- run-by-ci -->\nSome text.\n\n```sh\nmake test\n```\n"))


def test_not_run_must_say_why(page):
    with pytest.raises(ValueError, match="say why the block cannot run"):
        read_blocks(page("<!-- not-run -->\n```sh\nmake run\n```\n"))


def test_another_tests_marker_may_stand_above_some_text(page):
    blocks = read_blocks(page("<!-- example: reserve-run -->\nThe request:\n\n```json\n{}\n```\n"))
    assert blocks[0].marker == "example" and blocks[0].marker_value == "reserve-run"


def test_indented_blocks_in_lists_are_read(page):
    blocks = read_blocks(page("- a step:\n\n  ```sh\n  make test\n  ```\n"))
    assert blocks[0].lines == ("make test",)


def test_variables_expand_outside_single_quotes_only():
    variables = {"ENG": "42"}
    assert expand("x $ENG ${ENG} '$ENG'", variables, shell=True) == "x 42 42 '$ENG'"
    with pytest.raises(KeyError, match=r"\$RUN is used before"):
        expand("$RUN", variables)


def test_a_new_variable_takes_the_value_found_and_then_must_match():
    variables = {}
    match_json(
        {"id": "$ENG", "team": [{"user": "$BOB"}, "…"]},
        {"id": "e-1", "name": "x", "team": [{"user": 3, "role": "reviewer"}, {"user": 4}]},
        variables,
    )
    assert variables == {"ENG": "e-1", "BOB": "3"}
    with pytest.raises(Mismatch, match="documented 'e-1'"):
        match_json({"id": "$ENG"}, {"id": "e-2"}, variables)


def test_lists_match_whole_unless_they_end_with_an_ellipsis():
    match_json([1, "…"], [1, 2, 3], {})
    with pytest.raises(Mismatch, match=r"documented 1 item\(s\), got 3"):
        match_json([1], [1, 2, 3], {})


def test_an_ellipsis_stands_for_any_text():
    match_text(
        "Cannot complete “…”: it is draft…", "Cannot complete “A”: it is draft (x).", {}, what="d"
    )
    with pytest.raises(Mismatch):
        match_text(
            "Cannot complete “…”: it is active", "Cannot complete “A”: it is draft", {}, what="d"
        )


def test_numbers_booleans_and_null_compare_exactly():
    match_json({"n": 1, "b": True, "z": None}, {"n": 1.0, "b": True, "z": None}, {})
    for documented, actual in (
        ({"b": True}, {"b": 1}),
        ({"n": 1}, {"n": True}),
        ({"z": None}, {"z": 0}),
    ):
        with pytest.raises(Mismatch):
            match_json(documented, actual, {})
