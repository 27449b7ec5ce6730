"""The small words of notifications: quotes that end sentences, dates, "in N days"."""

import datetime

import pytest

from notifications.messages import in_days, quoted, quoted_end, when


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Wrong cut-off", "“Wrong cut-off”."),
        ("Wrong cut-off.", "“Wrong cut-off.”"),
        ("Why 1.05?", "“Why 1.05?”"),
        ("  spread\n over   lines ", "“spread over lines”."),
    ],
)
def test_a_quote_ends_its_sentence_once(text, said):
    assert quoted_end(text) == said


def test_long_quotes_are_cut():
    assert quoted("x" * 600, limit=10) == "“xxxxxxxxx…”"
    assert quoted_end("x" * 600, limit=10) == "“xxxxxxxxx…”"


def test_dates_are_spelled_out_in_utc():
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    assert (
        when(datetime.datetime(2026, 3, 31, 11, 30, tzinfo=plus_two)) == "31 March 2026 09:30 UTC"
    )
    assert when(datetime.date(2026, 4, 1)) == "1 April 2026"
    assert [in_days(n) for n in (0, 1, 5)] == ["today", "tomorrow", "in 5 days"]
