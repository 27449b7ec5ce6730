"""The back office's one way to show dates and times (FORMAT_MODULE_PATH, issue 17).

Every page, export and message shows a moment as "5 December 2026 06:33 UTC" and a day as
"5 December 2026": the time zone is always named. Forms accept and show ISO dates
(2026-12-05, 2026-12-05 06:33) first, which no reader can take for another day;
the British day-first form is still accepted.
"""

DATE_FORMAT = "j F Y"
DATETIME_FORMAT = "j F Y H:i T"
SHORT_DATE_FORMAT = "j F Y"
SHORT_DATETIME_FORMAT = "j F Y H:i T"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1
DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d %b %Y", "%d %B %Y"]
DATETIME_INPUT_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
]
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
