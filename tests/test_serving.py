"""Serving: gunicorn's configuration from the environment, the Procfiles, /healthz, connections."""

import runpy
from pathlib import Path

import pytest
from django.db import OperationalError
from django.urls import reverse

from workflows.models import WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[1]
HEALTHZ = "/healthz"
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


def gunicorn_config(monkeypatch, **environment):
    for name in ("GUNICORN_BIND", "HOST", "PORT", "WEB_CONCURRENCY", "GUNICORN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_defaults(monkeypatch):
    config = gunicorn_config(monkeypatch)
    assert (config["bind"], config["workers"], config["timeout"]) == ("127.0.0.1:8000", 2, 120)
    assert config["accesslog"] == "-" and "%(D)s" in config["access_log_format"]
    assert config["wsgi_app"] == "config.wsgi:application"


def test_gunicorn_reads_the_environment(monkeypatch):
    config = gunicorn_config(
        monkeypatch, HOST="0.0.0.0", PORT="9000", WEB_CONCURRENCY="4", GUNICORN_TIMEOUT="30"
    )
    assert (config["bind"], config["workers"], config["timeout"]) == ("0.0.0.0:9000", 4, 30)
    assert gunicorn_config(monkeypatch, GUNICORN_BIND="unix:/run/app.sock")["bind"] == (
        "unix:/run/app.sock"
    )


def test_the_procfiles_start_a_web_server_and_a_worker():
    production = (ROOT / "Procfile").read_text()
    assert "\nweb: gunicorn --config gunicorn.conf.py\n" in production
    assert "\nworker: python manage.py run_workers\n" in production
    development = (ROOT / "Procfile.dev").read_text()
    assert "\nweb: python manage.py runserver " in development
    assert "\nworker: python manage.py run_workers" in development


def test_connections_are_persistent_and_checked_by_default(settings):
    database = settings.DATABASES["default"]
    assert database["CONN_MAX_AGE"] == 60 and database["CONN_HEALTH_CHECKS"] is True


@pytest.mark.django_db
def test_healthz_needs_no_login_and_reports_the_database_and_workers(client):
    assert reverse("healthz") == HEALTHZ
    response = client.get(HEALTHZ)
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    body = response.json()
    assert set(body) == {"status", "database", "database_ms", "workers"}
    # The test settings run tasks at once: no worker needed.
    assert body["status"] == "ok" and body["workers"] == {"alive": 0, "needed": False}


@pytest.mark.django_db
def test_healthz_is_degraded_while_runs_wait_for_a_missing_worker(client, settings):
    settings.TASKS = DATABASE_TASKS
    body = client.get(HEALTHZ).json()
    assert body["status"] == "degraded" and body["workers"] == {"alive": 0, "needed": True}
    WorkerHeartbeat.objects.create(worker_id="w", hostname="h", pid=1)
    body = client.get(HEALTHZ).json()
    assert body["status"] == "ok" and body["workers"] == {"alive": 1, "needed": True}


@pytest.mark.django_db
def test_healthz_answers_503_when_the_database_does_not(client, monkeypatch):
    class DownConnection:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr("config.health.connection", DownConnection())
    response = client.get(HEALTHZ)
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unavailable"}


@pytest.mark.django_db
def test_healthz_only_answers_get(client):
    assert client.post(HEALTHZ).status_code == 405
