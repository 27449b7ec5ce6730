"""The back office's admin site: its index is the actuary's dashboard, above the app list.

`WorkspaceAdminConfig` replaces "django.contrib.admin" in INSTALLED_APPS; its
`default_site` makes `WorkspaceAdminSite` the `admin.site` every app registers with,
so every `@admin.register`, every "admin:…" URL name and `admin.site.urls` stay as
they were (Django's documented way to override the default admin site).

This module is imported while the app registry is being built: it imports no model
(the dashboard's reads are imported when the index is shown).
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class WorkspaceAdminSite(admin.AdminSite):
    """The admin site whose index shows the user's pending work before the app list."""

    site_header = "AI Actuary back office"
    site_title = "AI Actuary"
    index_title = "Workspace"
    index_template = "admin/workspace_index.html"

    def index(self, request, extra_context=None):
        """Show the dashboard of the signed-in user, then the app list."""
        from .dashboard import dashboard_for

        context = {"dashboard": dashboard_for(request.user), **(extra_context or {})}
        return super().index(request, extra_context=context)


class WorkspaceAdminConfig(AdminConfig):
    """The admin app, with `WorkspaceAdminSite` as its default site."""

    default_site = "config.admin_site.WorkspaceAdminSite"
