"""What the triangle reader says about a file: module constants, so callers and tests match them.

Every message about a cell starts with its spreadsheet row (the header is row 1) and
column (letter and header), so a user finds it in the file they uploaded.
"""

from workflows.reserving.triangles.limits import MAX_PERIODS, MIN_DEVELOPMENT_AGES, MIN_ORIGINS

MSG_BAD_OPTION = "{name} must be one of {allowed}, not {value!r}"
MSG_EMPTY_FILE = "row 1, column A: the file {file!r} is empty"
MSG_NOT_TEXT = "{file!r} is neither a CSV text file nor an Excel (.xlsx) workbook"
MSG_UNREADABLE_EXCEL = "{file!r} is not a readable Excel (.xlsx) workbook: {error}"
MSG_UNREADABLE_CSV = "{file!r} is not a readable CSV file: {error}"
MSG_OLD_EXCEL = "{file!r} is an old Excel (.xls) file; save it as .xlsx or CSV"
MSG_TOO_MANY_ROWS = (
    "row {row}: {file!r} has more than {limit:,} rows, far more than a triangle or an "
    "exposure needs; keep only the data in the first sheet"
)
MSG_TOO_MANY_SCANNED_ROWS = (
    "row {row}: {file!r} runs past row {limit:,}, mostly empty; delete the empty rows "
    "below the data"
)
MSG_TOO_MANY_COLUMNS = (
    "row {row}: {file!r} has more than {limit} columns, more than a triangle can have"
)
MSG_UNPACKS_TOO_LARGE = (
    "{file!r} unpacks to {size:,} bytes, more than the {limit:,} a triangle or exposure "
    "workbook may hold; save only the data, or as CSV"
)
MSG_NO_DATA_ROWS = "row {row}, column A: the file {file!r} has a header row but no data rows"
MSG_LONG_COLUMNS_MISSING = (
    "row {row}: the long layout needs origin, development and value columns; "
    "missing {missing} (headers found: {found})"
)
MSG_MAPPED_COLUMN_MISSING = (
    "row {row}: the {role} column is mapped to {name!r}, which is not a header of the file "
    "(headers found: {found})"
)
MSG_MAPPED_COLUMN_TWICE = (
    "row {row}: the {role} column is mapped to {name!r}, already the {other} column; "
    "map each role to its own column"
)
MSG_MAPPING_NEEDS_LONG = (
    "a column mapping (origin, development, value) is for the long layout; a wide file "
    "has its origins in column A and one column per development age"
)
MSG_EMPTY_ORIGIN = "row {row}, column {column}: the origin is empty"
MSG_EMPTY_VALUE = "row {row}, column {column}: the value is empty"
MSG_NOT_A_NUMBER = "row {row}, column {column}: {value!r} is not a number"
MSG_BAD_AGE = "row {row}, column {column}: development age {value!r} is not a number"
MSG_EMPTY_AGE = "row {row}, column {column}: the development age is empty"
MSG_EMPTY_AGE_HEADER = "row {row}, column {column}: the development age header is empty"
MSG_DUPLICATE_CELL = (
    "row {row}, column {column}: duplicate cell: origin {origin} at development age {age} "
    "was already given in row {first_row}"
)
MSG_DUPLICATE_ORIGIN = (
    "row {row}, column {column}: duplicate origin {origin} (already in row {first_row})"
)
MSG_DUPLICATE_AGE = (
    "row {row}, column {column}: duplicate development age {age} (already in column {first_column})"
)
MSG_TOO_FEW_ORIGINS = (
    "rows {first_row}-{last_row}, column {column}: only {count} origin(s) ({origins}); "
    f"at least {MIN_ORIGINS} are needed"
)
MSG_TOO_FEW_AGES = (
    "row {row}, column {column}: only {count} development age(s) ({ages}); "
    f"at least {MIN_DEVELOPMENT_AGES} are needed"
)
MSG_TOO_MANY_PERIODS = (
    "row {row}, column {column}: {count} {what} is more than the " + str(MAX_PERIODS) + " supported"
)
MSG_EXTRA_CELL = (
    "row {row}, column {column}: ragged row: value {value!r} lies beyond the last "
    "development age column"
)
MSG_EMPTY_AGE_COLUMN = (
    "row {row}, column {column}: development age {age} has no values in any origin"
)
MSG_ORIGIN_WITHOUT_VALUES = "row {row}, column {column}: origin {origin} has no values"
MSG_VALUE_AFTER_GAP = (
    "row {row}, column {column}: ragged row: origin {origin} has a value at development "
    "age {age} after an empty cell at age {gap_age} (column {gap_column})"
)
MSG_LEADING_GAP = (
    "row {row}, column {column}: origin {origin} has no values before development age "
    "{age}: its earlier development was not recorded, so its age-to-age factors start "
    "from age {age}"
)
MSG_LEADING_GAP_INCREMENTAL = (
    "row {row}, column {column}: origin {origin} has no values before development age "
    "{age}: with incremental values its cumulative amounts cannot be known; give the "
    "triangle as cumulative values"
)
MSG_BEYOND_DIAGONAL = (
    "row {row}, column {column}: ragged row: origin {origin} has a value at development "
    "age {age}, beyond the latest diagonal (its last allowed age is {allowed})"
)
MSG_MISSING_DIAGONAL = (
    "row {row}, column {column}: origin {origin} has no value at development age {age}, "
    "which the latest diagonal requires"
)
MSG_MISSING_DIAGONAL_LONG = (
    "row {row}, column {column}: origin {origin} stops at development age {last_age}; "
    "the latest diagonal requires a value at age {age}"
)
MSG_NO_FUTURE_CELLS = (
    "row {row}, column {column}: every origin already has all {count} development ages; "
    "a triangle needs a latest diagonal to project from"
)
MSG_ORIGIN_GAP = (
    "row {row}, column {column}: the {grain} origins jump from {before} to {after}: origin "
    "{missing} is missing (every origin period must be present; give one without claims "
    "as zeros)"
)
MSG_GRAIN_NOT_SUPPORTED = (
    "row {row}, column {column}: the grain combination is not supported: {origins} origins "
    "with development ages that each span several origin periods ({ages}). The origin "
    "grain must be at least as coarse as the development grain (as chainladder's grain "
    "requires): give development ages at the origin grain or finer (e.g. 3, 6, 9, … months "
    "for quarterly origins), or aggregate the origins to years"
)
MSG_NEGATIVE_CUMULATIVE = (
    "row {row}, column {column}: negative development for origin {origin}: the cumulative "
    "value falls from {previous} at age {previous_age} to {value} at age {age}"
)
MSG_NEGATIVE_INCREMENT = (
    "row {row}, column {column}: negative development for origin {origin}: the incremental "
    "value {value} at age {age} is negative"
)
MSG_NEGATIVE_FIRST = (
    "row {row}, column {column}: negative development for origin {origin}: the first "
    "value {value} at age {age} is negative"
)
MSG_NEGATIVE_HINT = (
    '. To accept it and run with a warning instead, set "allow_negative_development": '
    "true in input_params (REST API), or tick “Allow negative development” in the "
    "reserving inputs of the workflow run form (admin)"
)
MSG_ZERO_VALUES = (
    "origin {origin} is zero at development age {age}: age-to-age factors from or to a "
    "zero are left out of the averages (chainladder reads zeros as missing)"
)
MSG_MORE_PROBLEMS = " (and {count} more problem(s): a data validation run lists them all)"
# How the admin's forms say what MSG_NEGATIVE_HINT says (they name their own field).
MSG_NEGATIVE_HINT_FORM = (
    ". To accept it and run with a warning instead, tick “Allow negative development”"
)
