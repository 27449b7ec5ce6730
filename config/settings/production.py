"""Production settings: no default secret or database, HTTPS only, secure cookies.

`manage.py check --deploy` passes with these defaults. Each protection has an
environment variable to opt out where a deployment needs it (documented in the
operator's guide): e.g. SECURE_SSL_REDIRECT=false when a proxy already redirects,
SECURE_HSTS_SECONDS=0 while trying HTTPS out.
"""

import os

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DEBUG", "false")

from .base import *  # noqa: F403
from .base import DATABASE_URL, DATABASE_URL_MISSING, env

if not DATABASE_URL:
    raise ImproperlyConfigured(DATABASE_URL_MISSING)

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Load balancers probe /healthz over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# One year of HTTPS-only, subdomains included; set 0 to switch HSTS off.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Trust the proxy's header that says a request came over HTTPS only when told to: it is
# safe only behind a proxy that always sets (overwrites) it, e.g.
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO. Unset, the header is ignored.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https") if _proxy_ssl_header else None

# Email through SMTP, configured from the environment (docs/notifications.md).
_email_backend = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
MAILERS = {"default": {"BACKEND": _email_backend}}
if _email_backend == "django.core.mail.backends.smtp.EmailBackend":
    MAILERS["default"]["OPTIONS"] = {
        "host": env.str("EMAIL_HOST", default="localhost"),
        "port": env.int("EMAIL_PORT", default=587),
        "username": env.str("EMAIL_HOST_USER", default=""),
        "password": env.str("EMAIL_HOST_PASSWORD", default=""),
        "use_tls": env.bool("EMAIL_USE_TLS", default=True),
        "use_ssl": env.bool("EMAIL_USE_SSL", default=False),
        "timeout": env.int("EMAIL_TIMEOUT", default=30),
    }
