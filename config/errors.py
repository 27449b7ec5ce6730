"""Error pages that answer the REST API's clients in the API's own JSON body.

Django answers a URL no route matches (and its other errors outside DRF's views) with
an HTML page. Under /api/ a client expects `{"detail": …, "code": …}` as every other
error there says it (docs/api/errors.md); elsewhere the admin's HTML pages stay.
"""

from django.http import JsonResponse
from django.views import defaults

from records.api.exceptions import SERVER_ERROR

API_PREFIX = "/api/"
NOT_FOUND = "Not found: no API endpoint or object at this address."
BAD_REQUEST = "The request is malformed."
FORBIDDEN = "You may not do this."


def _for_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request, exception):
    """400: the API's JSON body under /api/, Django's page elsewhere."""
    if _for_api(request):
        return JsonResponse({"detail": BAD_REQUEST, "code": "bad_request"}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    """403: the API's JSON body under /api/, Django's page elsewhere."""
    if _for_api(request):
        return JsonResponse({"detail": FORBIDDEN, "code": "permission_denied"}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    """404: the API's JSON body under /api/ (e.g. an id that is not a UUID), a page elsewhere."""
    if _for_api(request):
        return JsonResponse({"detail": NOT_FOUND, "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """500: the API's JSON body under /api/, Django's page elsewhere."""
    if _for_api(request):
        return JsonResponse({"detail": SERVER_ERROR, "code": "server_error"}, status=500)
    return defaults.server_error(request)
