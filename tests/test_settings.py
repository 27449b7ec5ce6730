"""Settings come from the environment; production refuses to start without a secret key."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _check(settings_module, **env_vars):
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env.update(DJANGO_SETTINGS_MODULE=settings_module, **env_vars)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = _check("config.settings.production", DATABASE_URL=f"sqlite:///{tmp_path}/db")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_off_without_secret_key_is_refused_in_any_settings(tmp_path):
    result = _check("config.settings.local", DEBUG="false", DATABASE_URL=f"sqlite:///{tmp_path}/db")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_local_settings_start_with_the_development_key(tmp_path):
    result = _check("config.settings.local", DATABASE_URL=f"sqlite:///{tmp_path}/db")
    assert result.returncode == 0, result.stderr


def test_production_starts_with_a_secret_key(tmp_path):
    result = _check(
        "config.settings.production",
        SECRET_KEY="a-real-secret-key-for-this-test-only-0123456789",
        DATABASE_URL=f"sqlite:///{tmp_path}/db",
    )
    assert result.returncode == 0, result.stderr


def test_time_zone_is_utc(settings):
    assert settings.TIME_ZONE == "UTC"
    assert settings.USE_TZ is True


def _variables_read_by_settings():
    import re

    pattern = re.compile(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""")
    names = set()
    for path in (ROOT / "config" / "settings").glob("*.py"):
        names.update(pattern.findall(path.read_text()))
    return names


def test_every_environment_variable_is_documented():
    names = _variables_read_by_settings()
    assert {"DATABASE_URL", "SECRET_KEY", "TASKS_BACKEND"} <= names
    example = (ROOT / ".env.example").read_text()
    # The operator's documentation: README.md and the pages under docs/.
    readme = "\n".join(
        path.read_text() for path in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
    )
    assert not [n for n in names if f"# {n}=" not in example], "missing from .env.example"
    assert not [n for n in names if f"`{n}`" not in readme], "missing from README.md or docs/"
