"""The API's pagination: page numbers for lists, opaque cursors for append-only streams."""

from rest_framework import pagination

MAX_PAGE_SIZE = 100
DEFAULT_CURSOR_PAGE_SIZE = 50


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=` and `?page_size=` (default 25, at most 100)."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class CursorPagination(pagination.CursorPagination):
    """Opaque `?cursor=` links for append-only streams; `?page_size=` up to 100.

    Used where rows are only ever appended (the audit log, chat messages): a page
    never shifts while new rows arrive, and the cost does not grow with the offset.
    """

    page_size = DEFAULT_CURSOR_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
