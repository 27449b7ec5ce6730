"""URL configuration: the admin is the actuaries' main screen; the REST API is under /api/."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz

admin.site.site_header = "AI Actuary back office"
admin.site.site_title = "AI Actuary"
admin.site.index_title = "Workspace"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_router")),
    # The schema and its documentation pages are public (no data in them); their assets
    # are our own static files (drf-spectacular-sidecar), never a CDN.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Log in and out of the browsable API with a session.
    path("api/auth/", include("rest_framework.urls")),
    # Liveness for load balancers and monitors: no login, nothing secret (config/health.py).
    path("healthz", healthz, name="healthz"),
]

# MEDIA_ROOT is deliberately never served as static files, not even with DEBUG on:
# artefact bytes leave only through the verified, scoped and audited download views.

# Under /api/ even Django's own errors answer in the API's JSON body (config/errors.py).
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
