"""Settings come from the environment; production refuses to start without a secret or database."""

import os
import subprocess
import sys
from pathlib import Path

from config.settings.base import DATABASE_URL_MISSING

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


def test_production_refuses_to_start_without_a_database_url():
    result = _check(
        "config.settings.production",
        SECRET_KEY="a-real-secret-key-for-this-test-only-0123456789",
        DATABASE_URL="",
    )
    assert result.returncode != 0
    assert DATABASE_URL_MISSING in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_development_settings_fall_back_to_sqlite_without_a_database_url():
    code = "import config.settings.local as s; print(s.DATABASES['default']['ENGINE'])"
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env.update(DATABASE_URL="")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"


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
    manual = (ROOT / "docs" / "operators" / "settings.md").read_text()
    assert not [n for n in names if f"# {n}=" not in example], "missing from .env.example"
    assert not [n for n in names if f"`{n}`" not in manual], "missing from the Settings page"


def _deploy_check(tmp_path, **env_vars):
    # The browser tests' DJANGO_ALLOW_ASYNC_UNSAFE is no deployment's setting.
    skipped = {"SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in skipped}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="x7!Rq2-a-long-random-production-key-for-this-test-only-kZ0pL9mN3vB8c",
        DATABASE_URL=f"sqlite:///{tmp_path}/db",
        **env_vars,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check_by_default(tmp_path):
    """Hardening finding 7: HSTS and the HTTPS redirect are on unless opted out."""
    result = _deploy_check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_opting_out_of_the_https_redirect_is_reported_by_the_deploy_check(tmp_path):
    result = _deploy_check(tmp_path, SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0")
    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout
    assert "security.W008" in result.stderr + result.stdout


def _production_setting(name, **env_vars) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"SECURE_PROXY_SSL_HEADER"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="a-real-secret-key-for-this-test-only-0123456789",
        DATABASE_URL="sqlite:////tmp/unused.sqlite3",
        **env_vars,
    )
    code = f"from django.conf import settings; print(repr(settings.{name}))"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_proxy_ssl_header_is_trusted_only_when_configured():
    assert _production_setting("SECURE_PROXY_SSL_HEADER") == "None"
    configured = _production_setting(
        "SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO"
    )
    assert configured == "('HTTP_X_FORWARDED_PROTO', 'https')"
