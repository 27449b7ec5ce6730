"""Settings for a developer's machine (`make run`): DEBUG on unless the environment says no."""

import os

os.environ.setdefault("DEBUG", "true")

from .base import *  # noqa: F403
from .base import STORAGES

# runserver serves static files itself; the manifest storage would need collectstatic first.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
