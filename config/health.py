"""`/healthz`: is this web process able to serve? For load balancers and monitoring.

No authentication and nothing secret: the answer says whether the database answered
(503 when it did not) and how many workers are alive (`workflows.selectors`), so a
monitor can alert when queued runs would wait for ever. Missing workers do not make
the web process unhealthy: it answers 200 with `"status": "degraded"`.
"""

from __future__ import annotations

import logging
import time

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from workflows.selectors import workers_alive, workers_needed

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request):
    """Answer 200 when the database answers (with the live worker count), 503 when not."""
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        alive = workers_alive()
    except DatabaseError as error:
        logger.error("Health check: the database did not answer: %s", error)
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    database_ms = round((time.perf_counter() - started) * 1000, 1)
    needed = workers_needed()
    status = "degraded" if needed and not alive else "ok"
    return JsonResponse(
        {
            "status": status,
            "database": "ok",
            "database_ms": database_ms,
            "workers": {"alive": alive, "needed": needed},
        }
    )
