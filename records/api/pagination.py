"""The API's pagination: page numbers for lists, opaque cursors for append-only streams."""

from django.core.exceptions import ValidationError
from rest_framework import pagination
from rest_framework.exceptions import NotFound

from ..pagination import EstimatedCountPaginator
from .filters import MAX_DATABASE_INTEGER

MAX_PAGE_SIZE = 100
DEFAULT_CURSOR_PAGE_SIZE = 50


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=` and `?page_size=` (default 25, at most 100).

    `count` is exact up to EXACT_COUNT_LIMIT matching rows and PostgreSQL's estimate
    above (`records.pagination`): an exact COUNT of a big table costs more than the page.
    """

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    django_paginator_class = EstimatedCountPaginator


class CursorPagination(pagination.CursorPagination):
    """Opaque `?cursor=` links for append-only streams; `?page_size=` up to 100.

    Used where rows are only ever appended (the audit log, chat messages): a page
    never shifts while new rows arrive, and the cost does not grow with the offset.
    A cursor the server did not make (its position not a value of the ordering
    field) answers 404 "Invalid cursor", never a database error.
    """

    page_size = DEFAULT_CURSOR_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def paginate_queryset(self, queryset, request, view=None):
        """Remember the field the cursor's position belongs to, then paginate."""
        ordering = self.get_ordering(request, queryset, view)
        self.position_field = queryset.model._meta.get_field(ordering[0].lstrip("-"))
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        """Return the cursor, refusing a position that is not a value of the ordering field."""
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        try:
            value = self.position_field.to_python(cursor.position)
        except (ValidationError, TypeError, ValueError):
            raise NotFound(self.invalid_cursor_message) from None
        if isinstance(value, int) and abs(value) > MAX_DATABASE_INTEGER:
            raise NotFound(self.invalid_cursor_message)
        return cursor
