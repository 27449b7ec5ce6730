"""Settings shared by every environment, read from the environment with django-environ.

Every variable is listed with its default in `.env.example` and docs/operators/settings.md.
"""

import datetime
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# A .env file next to manage.py is read if present; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# A development key is acceptable only while DEBUG is on; production must supply one.
DEVELOPMENT_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable "
            "(a development default is only used when DEBUG is on)."
        )
    SECRET_KEY = DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.admin_site.WorkspaceAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "simple_history",
    "django_tasks_db",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    # htmx for the admin pages that react without a reload (the guided reserving
    # analysis); its script is served from django-htmx's own static files, never a CDN.
    "django_htmx",
    # The project's apps, lowest layer first (docs/developers/architecture.md): each registers its
    # hooks in AppConfig.ready(), in this order.
    "records",
    "audit",
    "engagements",
    "workflows",
    "artefacts",
    "approvals",
    "conversations",
    "notifications",
    # On top, beside config: the demo data drives every app (make run loads it).
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "records.middleware.RequestContextMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # request.htmx: whether a request came from htmx (a fragment, not a page).
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a login refused for too many failures into a 429 (config.security).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The database, as a URL (postgres://…). Without it, a SQLite file next to manage.py, for
# development and tests only: production refuses to start without DATABASE_URL.
DATABASE_URL = env.str("DATABASE_URL", default="")
DATABASE_URL_MISSING = (
    "DATABASE_URL is not set. Production runs on the firm's database server: set "
    "DATABASE_URL, e.g. postgres://USER:PASSWORD@HOST:5432/NAME (the SQLite file next "
    "to manage.py is a development default, never production's)."
)
DATABASES = {
    "default": env.db_url_config(DATABASE_URL or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections (issue 18: opening one cost 8-26 ms a request), checked before
# each request reuses them, so a restarted database server costs one failed check.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=True))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite with a web server and a worker writing at once (`make run`): write-ahead
    # logging lets readers through while one writes, and IMMEDIATE transactions take the
    # write lock when they begin, so a busy database makes a writer wait (up to 20 s)
    # rather than fail with "database is locked" half-way through.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One way to show dates, times and numbers everywhere (issue 17): config/formats/.
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")

# With DEBUG on, whitenoise serves static files straight from the apps (no collectstatic).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Artefact files: the local file system under MEDIA_ROOT by default; S3-compatible object
# storage (AWS S3, MinIO, Ceph, ...) through django-storages when ARTEFACT_STORAGE=s3 or a
# bucket is named. Credentials may also come from the usual AWS chain (instance role, profile).
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
ARTEFACT_STORAGE = env.str(
    "ARTEFACT_STORAGE", default="s3" if AWS_STORAGE_BUCKET_NAME else "local"
).lower()
if ARTEFACT_STORAGE == "local":
    _artefact_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif ARTEFACT_STORAGE == "s3":
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured(
            "ARTEFACT_STORAGE is s3 but AWS_STORAGE_BUCKET_NAME is not set. "
            "Name the bucket that holds the artefact files."
        )
    _s3_options = {
        "bucket_name": AWS_STORAGE_BUCKET_NAME,
        "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
        "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
        "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
        "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
        "custom_domain": env.str("AWS_S3_CUSTOM_DOMAIN", default="") or None,
        "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
        "location": env.str("AWS_LOCATION", default=""),
        # Stored bytes never change: a name that exists is never written over.
        "file_overwrite": False,
        # Objects stay private (bucket policy decides); downloads go through the app.
        "default_acl": None,
        "querystring_auth": True,
        # A file read from the bucket spills to a temporary file past this size; the
        # django-storages default (0) would hold a whole 100 MB artefact in memory.
        "max_memory_size": env.int("AWS_S3_MAX_MEMORY_SIZE", default=2621440),
    }
    _artefact_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {key: value for key, value in _s3_options.items() if value is not None},
    }
else:
    raise ImproperlyConfigured(
        f"ARTEFACT_STORAGE must be 'local' or 's3', not {ARTEFACT_STORAGE!r}."
    )

STORAGES = {
    "default": _artefact_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Largest artefact file accepted, in bytes (100 MB); a bigger upload is refused with 413.
ARTEFACT_MAX_UPLOAD_SIZE = env.int("ARTEFACT_MAX_UPLOAD_SIZE", default=100 * 1024 * 1024)

# Background tasks (workflow runs) on Django's tasks framework. By default the database
# backend of django-tasks-db: durable, on SQLite or PostgreSQL, workers started with
# `manage.py db_worker` (several, on several machines, may share one PostgreSQL).
# TASKS_BACKEND names another django.tasks backend class instead: the RQ or Celery ones
# (docs/operators/workers.md says what else each needs), or
# django.tasks.backends.immediate.ImmediateBackend to run each task in the enqueuing process.
TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

# Workers (`manage.py run_workers`, docs/operators/workers.md): how often an idle worker
# looks for a task, how many worker processes one command starts, how often each records
# its heartbeat, after how long without one a worker counts as dead (its run is then
# settled by the reaper), and how often live workers run the reaper.
TASK_WORKERS = {
    "POLL_INTERVAL": env.float("WORKER_POLL_INTERVAL", default=0.2),
    "CONCURRENCY": env.int("WORKER_CONCURRENCY", default=1),
    "HEARTBEAT_INTERVAL": env.float("WORKER_HEARTBEAT_INTERVAL", default=5.0),
    "DEAD_AFTER": env.float("WORKER_DEAD_AFTER", default=30.0),
    "REAP_INTERVAL": env.float("WORKER_REAP_INTERVAL", default=30.0),
}

LOGIN_URL = "admin:login"

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT failed logins for one account,
# or from one IP address, further attempts are refused for LOGIN_COOLOFF_MINUTES (429 with
# Retry-After) on the admin, the API's login page and token authentication alike.
AUTHENTICATION_BACKENDS = (
    "config.security.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Successful logins are in the audit log already; axes keeps only the failure counts.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "records.middleware.client_ip"
AXES_LOCKOUT_CALLABLE = "config.security.lockout_response"

# REST API (/api/v1/, see docs/api/). Token first: its WWW-Authenticate header makes an
# anonymous request answer 401 rather than 403. Session auth serves the browsable API and
# Swagger UI (with CSRF). Every list is paginated, with ?page_size= capped at 100.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": (
        "config.security.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ),
    "DEFAULT_PERMISSION_CLASSES": ("records.api.permissions.ModelPermissions",),
    # Request bodies are JSON, and the schema says so: a generated client sends JSON, never
    # a form that flattens objects and nulls. The two file uploads take multipart forms
    # (artefacts.api.views). The browsable API posts its raw-data form as JSON.
    "DEFAULT_PARSER_CLASSES": ("records.api.parsers.JSONParser",),
    # JSON written by orjson where it comes out as DRF writes it (records.api.renderers).
    "DEFAULT_RENDERER_CLASSES": (
        "records.api.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ),
    "DEFAULT_FILTER_BACKENDS": (
        "records.api.filters.FilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ),
    "DEFAULT_PAGINATION_CLASS": "records.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "records.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "records.api.exceptions.api_exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# Lists (the API's pages and the admin's changelists) count matching rows exactly up to
# this many, and take PostgreSQL's estimate above it (records.pagination); 0: always exact.
EXACT_COUNT_LIMIT = env.int("EXACT_COUNT_LIMIT", default=10_000)

# OpenAPI 3 schema (/api/schema/) and Swagger UI (/api/docs/), with the Swagger UI and ReDoc
# assets served from our own static files: many firms' networks block public CDNs.
SPECTACULAR_SETTINGS = {
    "TITLE": "AI Actuary back office API",
    "DESCRIPTION": (
        "The system of record for actuarial consulting work: engagements, workflow runs, "
        "artefacts, approvals, qualifications, the audit log and AI assistant sessions. "
        "The manual's REST API guide (docs/api/) covers authentication, filters, pagination "
        "and the error format, with examples."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge from validator.swagger.io: the docs page makes no request to another host.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Every model has its own status choices: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "EngagementStatusEnum": "engagements.choices.EngagementStatus",
        "WorkflowStatusEnum": "workflows.choices.WorkflowStatus",
        "ArtefactStatusEnum": "artefacts.choices.ArtefactStatus",
        "ApprovalStatusEnum": "approvals.choices.ApprovalStatus",
        "BackupStatusEnum": "audit.choices.BackupStatus",
        "RecoveryStatusEnum": "audit.choices.RecoveryStatus",
        # Two fields are called "role": a team member's and a chat message's.
        "TeamRoleEnum": "engagements.choices.TeamRole",
        "MessageRoleEnum": "conversations.choices.MessageRole",
        "NotificationEventEnum": "notifications.choices.NotificationEvent",
        # The reserving methods, in a run's results and their options.
        "ReservingMethodEnum": "workflows.reserving.options.METHODS",
    },
}

# django-simple-history: record which user made each change (taken from the request).
SIMPLE_HISTORY_REVERT_DISABLED = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# Where the `backup` command writes its archives (and `restore` its pre-recovery snapshots).
BACKUP_ROOT = env.path("BACKUP_ROOT", default=BASE_DIR / "backups")
# Encryption of archives at rest (audit.backup.crypto): the key new archives are written
# with ("id:" + 32 bytes of URL-safe base64; empty: not encrypted), and older keys that
# archives written before a rotation need.
BACKUP_ENCRYPTION_KEY = env.str("BACKUP_ENCRYPTION_KEY", default="")
BACKUP_DECRYPTION_KEYS = env.list("BACKUP_DECRYPTION_KEYS", default=[])
# Where archives are kept (audit.backup.storage): `local` (BACKUP_ROOT) or `s3`, the
# S3-compatible object storage "backups", with the artefacts' endpoint and credentials
# and a bucket (and key prefix) of its own.
BACKUP_STORAGE = env.str("BACKUP_STORAGE", default="local").lower()
if BACKUP_STORAGE == "s3":
    _backup_bucket = env.str("BACKUP_S3_BUCKET_NAME", default="") or AWS_STORAGE_BUCKET_NAME
    if not _backup_bucket:
        raise ImproperlyConfigured(
            "BACKUP_STORAGE is s3 but neither BACKUP_S3_BUCKET_NAME nor "
            "AWS_STORAGE_BUCKET_NAME is set. Name the bucket that holds the backup archives."
        )
    _backup_s3_options = {
        "bucket_name": _backup_bucket,
        "location": env.str("BACKUP_S3_LOCATION", default="backups"),
        "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
        "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
        "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
        "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
        "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
        "file_overwrite": False,
        "default_acl": None,
        # An archive read back spills to a temporary file past this size.
        "max_memory_size": env.int("AWS_S3_MAX_MEMORY_SIZE", default=2621440),
    }
    STORAGES["backups"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {key: value for key, value in _backup_s3_options.items() if value is not None},
    }
elif BACKUP_STORAGE != "local":
    raise ImproperlyConfigured(f"BACKUP_STORAGE must be 'local' or 's3', not {BACKUP_STORAGE!r}.")

# Email (notifications), through Django's mailers: the console backend (emails printed by
# the process that sends them) unless EMAIL_BACKEND names another; production settings
# default to SMTP configured from the environment (config/settings/production.py).
MAILERS = {
    "default": {
        "BACKEND": env.str(
            "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
        ),
    }
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="AI Actuary <noreply@localhost>")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

# Notifications (docs/notifications.md). Links in emails and webhook payloads start with
# NOTIFICATIONS_BASE_URL, the address people open the back office at.
NOTIFICATIONS_BASE_URL = env.str("NOTIFICATIONS_BASE_URL", default="http://127.0.0.1:8000")
NOTIFICATIONS_EMAIL_SUBJECT_PREFIX = env.str(
    "NOTIFICATIONS_EMAIL_SUBJECT_PREFIX", default="[AI Actuary]"
)
# Reminders (send_due_reminders): approvals expiring, and engagements due, within N days.
NOTIFICATIONS_APPROVAL_EXPIRY_DAYS = env.int("NOTIFICATIONS_APPROVAL_EXPIRY_DAYS", default=3)
NOTIFICATIONS_ENGAGEMENT_DUE_DAYS = env.int("NOTIFICATIONS_ENGAGEMENT_DUE_DAYS", default=7)
# Email and webhook deliveries: attempts in all, and the first retry delay in seconds
# (doubled after each failed attempt: 60, 120, 240, 480 s by default).
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=5)
NOTIFICATIONS_RETRY_DELAY = env.int("NOTIFICATIONS_RETRY_DELAY", default=60)
# Seconds a webhook receiver has to answer one delivery.
NOTIFICATIONS_WEBHOOK_TIMEOUT = env.int("NOTIFICATIONS_WEBHOOK_TIMEOUT", default=10)

# The AI assistant's MCP tool server (docs/api/mcp.md): the largest triangle an agent may
# upload inline, in bytes (never above ARTEFACT_MAX_UPLOAD_SIZE), and the longest a tool
# waits for a run, in seconds. Its stdio command reads the token from AI_ACTUARY_TOKEN.
MCP_MAX_UPLOAD_BYTES = env.int("MCP_MAX_UPLOAD_BYTES", default=1024 * 1024)
MCP_MAX_WAIT_SECONDS = env.int("MCP_MAX_WAIT_SECONDS", default=120)
