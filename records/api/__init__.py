"""Building blocks of the REST API shared by every app: permissions, pagination, serializers.

Each app's `api/` package composes these into thin viewsets; `config/api_router.py`
puts them on the one `/api/v1/` router. The rules they keep:

- a request needs a Django model permission (view for reads, add/change/delete for
  writes; a transition needs change) *and* the object must sit in an engagement the
  user may see, otherwise it does not exist for them (404, never 403);
- input is refused, not silently dropped, when it names a field the client may not
  write (status, hashes, timestamps, audit fields …) or a field that does not exist;
- every error has the one error body (`exceptions.api_exception_handler`), described
  in the OpenAPI schema (`schema`).

The settings name `permissions.ModelPermissions`, `pagination.PageNumberPagination`,
`schema.AutoSchema` and `exceptions.api_exception_handler`; DRF's APIView reads the
settings when it is imported, so only `viewsets` may import DRF's views. This
package's `__init__` imports nothing.
"""
