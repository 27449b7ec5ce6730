"""The foundation every app builds on, importing no domain app.

Abstract record models and the lifecycle base (`records.models`), the domain errors
(`records.exceptions`), the service helpers (`records.services`), the request context
(`records.middleware`), the bases of the REST API (`records.api`) and of the admin
(`records.admin`), and the hooks through which higher apps plug their rules into the
lower layers (`records.hooks`, `records.scoping`). See docs/developers/architecture.md.
"""
