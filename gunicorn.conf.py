"""gunicorn settings of the web process (`make serve`, the Procfile's `web`), from the environment.

Every variable is listed in .env.example and docs/operators/settings.md. Sync workers
(one request at a time each): the app is database-bound and its uploads stream to
disk, so a worker per core (two on a 2-core machine) is the starting point; raise
GUNICORN_THREADS for slow clients rather than piling up processes.
"""

import os


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "") or default


bind = _env("GUNICORN_BIND", f"{_env('HOST', '127.0.0.1')}:{_env('PORT', '8000')}")
# WEB_CONCURRENCY is the name hosting platforms set; gunicorn reads it too.
workers = int(_env("WEB_CONCURRENCY", "2"))
threads = int(_env("GUNICORN_THREADS", "1"))
# A request still running after this many seconds is killed with its worker (an
# upload of 100 MB over a slow link needs time: keep it above your slowest).
timeout = int(_env("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(_env("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(_env("GUNICORN_KEEPALIVE", "5"))
# Recycle each worker after this many requests (with jitter), bounding slow leaks.
max_requests = int(_env("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
# Access log with the time each request took (microseconds, %(D)s); "-" is stdout.
accesslog = _env("GUNICORN_ACCESS_LOG", "-") or None
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s %(D)sus "%(a)s"'
errorlog = "-"
loglevel = _env("LOG_LEVEL", "info").lower()
# The proxy's X-Forwarded-* headers are believed only from these addresses.
forwarded_allow_ips = _env("FORWARDED_ALLOW_IPS", "127.0.0.1")
wsgi_app = "config.wsgi:application"
