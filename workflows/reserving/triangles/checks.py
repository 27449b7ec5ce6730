"""The checks a triangle file goes through, in order, and how a failing one stops the reading."""

from collections.abc import Callable

CHECK_FILE = "file_readable"
CHECK_NUMBERS = "numeric_values"
CHECK_UNIQUE = "unique_cells"
CHECK_SIZE = "minimum_size"
CHECK_SHAPE = "triangle_shape"
CHECK_NEGATIVE = "non_negative_development"
# A later check only runs when the earlier ones pass.
CHECKS = (CHECK_FILE, CHECK_NUMBERS, CHECK_UNIQUE, CHECK_SIZE, CHECK_SHAPE, CHECK_NEGATIVE)

# Records a check's problems and raises Failed when there are any.
Run = Callable[[str, list[str]], None]


class Failed(Exception):
    """Stop reading after a check that found problems."""
