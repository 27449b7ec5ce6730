"""Settings for the test suite (pytest-django); the database comes from DATABASE_URL as usual.

Django's test runner already swaps email for the in-memory backend.
"""

import os

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")

from .base import *  # noqa: F403
from .base import STORAGES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# Let the test database reset (flush) empty the append-only AuditLog: the flush runs
# with the audit triggers suspended in its own transaction. Never set elsewhere.
AUDIT_LOG_ALLOW_TEST_FLUSH = True

# Run each background task (workflow run) at once, in the test process.
TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
