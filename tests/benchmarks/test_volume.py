"""Benchmark (not a timed test): the product at a firm's volume, side by side with a raw baseline.

Run with `make bench` (PostgreSQL). Seeds a small volume, times the admin changelists,
seeds up to the full volume (BENCH_ENGAGEMENTS, BENCH_RUNS, BENCH_ARTEFACTS, BENCH_AUDIT:
default 1,000, 10,000, 5,000 and 100,000; issue 18's volume is 10,000, 100,000, 50,000
and 1,000,000), then prints:

- the three API lists (page of 100) under gunicorn (2 sync workers), p50, against the
  same SQL through psycopg and orjson under the same gunicorn (tests/benchmarks/baseline_app.py);
- the changelists (audit log, runs, engagements, artefacts) at the small and the full volume;
- the audit log's filters (a month, a user and actions, a resource) through the API;
- verify_audit_log rows/s, one worker process against one per CPU;
- audited writes/s with 8 concurrent writers;
- a chain ladder queued on an idle worker: from queue to result, against the run's work;
- locust's mixed actuary workload at 10 and 50 users against gunicorn + PostgreSQL +
  a worker: requests/s, p50/p95, failures; then verify_audit_log.

It asserts only that nothing failed and the chain verifies, never a time.
"""

import csv
import datetime
import io
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.authtoken.models import Token

from artefacts.models import Artefact
from audit.models import AuditLog
from demo.management.commands.load_demo import Command as LoadDemo
from engagements.choices import EngagementStatus, TeamRole
from engagements.models import Engagement, EngagementMember
from tests.api_fixtures import reader
from tests.audit.test_bench_audited_writes import _level
from tests.factories import SuperUserFactory, UserFactory
from workflows.choices import WorkflowStatus
from workflows.models import WorkflowRun

pytestmark = [pytest.mark.benchmark, pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ENGAGEMENTS = int(os.environ.get("BENCH_ENGAGEMENTS", "1000"))
RUNS = int(os.environ.get("BENCH_RUNS", "10000"))
ARTEFACTS = int(os.environ.get("BENCH_ARTEFACTS", str(RUNS // 2)))
AUDIT = int(os.environ.get("BENCH_AUDIT", "100000"))
SMALL = {"engagements": 100, "runs": 1000, "artefacts": 500, "audit": 1000}
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "30"))
# Requests sent to a server before its figures are taken (its workers warm up).
WARM_UP = 8
# Runs queued one at a time on the idle worker, for its overhead.
IDLE_RUNS = 5
LOCUST_SECONDS = int(os.environ.get("BENCH_LOCUST_SECONDS", "20"))
LISTS = {
    "engagements": "/api/v1/engagements/?page_size=100",
    "audit-logs": "/api/v1/audit-logs/?page_size=100",
    "workflow-runs": "/api/v1/workflow-runs/?page_size=100",
}
CHANGELISTS = {
    "audit log": reverse("admin:audit_auditlog_changelist"),
    "runs": reverse("admin:workflows_workflowrun_changelist"),
    "engagements": reverse("admin:engagements_engagement_changelist"),
    "artefacts": reverse("admin:artefacts_artefact_changelist"),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dsn() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _env(**extra) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key",
        "DATABASE_URL": _dsn(),
        "PYTHONPATH": str(ROOT),
        "GUNICORN_ACCESS_LOG": "",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _serve(app: str, port: int, **extra) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", app]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=_env(GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2", **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return process
        except OSError as error:
            if getattr(error, "code", None):  # an HTTP answer: it is up
                return process
            time.sleep(0.3)
    process.kill()
    raise AssertionError(f"{app} did not start on port {port}")


def _p50(url: str, token: str | None = None, count: int = REQUESTS) -> float:
    headers = {"Authorization": f"Token {token}"} if token else {}
    times = []
    for _ in range(count + 2):
        started = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            response.read()
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:]) * 1000


def _server_cpu(process: subprocess.Popen) -> float:
    """Return the CPU seconds a server (gunicorn's master and its workers) has used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if process.pid in (pid, ppid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _per_request(
    url: str, server: subprocess.Popen, token: str | None = None
) -> tuple[float, float]:
    """Return (p50 ms, server CPU ms per request) of REQUESTS requests to `url`.

    Each of the server's workers answers a few requests first (not counted): the first
    request of a process imports and connects, which is not the list's cost.
    """
    _p50(url, token, count=WARM_UP)
    cpu = _server_cpu(server)
    p50 = _p50(url, token)
    return p50, (_server_cpu(server) - cpu) * 1000 / (REQUESTS + 2)


def _changelists(client: Client) -> dict:
    figures = {}
    for name, url in CHANGELISTS.items():
        times, size = [], 0
        for _ in range(6):
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200
            size = len(response.content)
        figures[name] = (statistics.median(times[1:]) * 1000, size / 1024)
    return figures


def _actuary():
    """Return a seeded team member on the fewest engagements, who may read the audit log."""
    user_id = (
        EngagementMember.objects.filter(user__is_superuser=False)
        .values("user_id")
        .annotate(engagements=Count("engagement_id"))
        .order_by("engagements", "user_id")
        .values_list("user_id", flat=True)
        .first()
    )
    return reader(get_user_model().objects.get(pk=user_id))


def _analyze():
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _captured_list_sql(client: Client, token: str, path: str) -> list[str]:
    """Return the SQL the product ran for the list itself (count and page), parameters in."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    # Authentication (the token and its user) is not the list's work.
    skip = ('FROM "authtoken_token"', 'FROM "django_session"', "EXPLAIN")
    return [
        query["sql"]
        for query in queries.captured_queries
        if not any(word in query["sql"] for word in skip) and query["sql"].startswith("SELECT")
    ]


def _idle_worker_run(port: int, token: str, engagement_id) -> tuple[float, float]:
    """Queue a chain ladder for the idle worker; return (s from queue to result, s of work).

    Through the product's server (gunicorn): upload the triangle, create the run, wait a
    second (the worker is idle between two polls), then the clock runs from the queue
    request until the run has left the queue and its work (it waits for approval, or
    has ended), read every 10 ms.
    """
    api = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Token {token}"}
    form = {"engagement": str(engagement_id), "name": "Idle worker", "artefact_type": "triangle"}
    with open(ROOT / "docs" / "files" / "paid.csv", "rb") as handle:
        upload = requests.post(
            f"{api}/artefacts/",
            headers=headers,
            data=form,
            files={"file": ("paid.csv", handle, "text/csv")},
            timeout=30,
        )
    assert upload.status_code == 201, upload.text
    created = requests.post(
        f"{api}/workflow-runs/",
        headers=headers,
        json={
            "engagement": str(engagement_id),
            "workflow_type": "reserve_calculation",
            "name": "Idle worker chain ladder",
            "input_params": {
                "triangle_artefact": upload.json()["id"],
                "cumulative": True,
                "measure": "paid",
            },
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    time.sleep(1)
    started = time.perf_counter()
    queued = requests.post(f"{api}/workflow-runs/{run_id}/queue/", headers=headers, timeout=30)
    assert queued.status_code == 200, queued.text
    waiting = {WorkflowStatus.PENDING, WorkflowStatus.QUEUED, WorkflowStatus.RUNNING}
    while WorkflowRun.objects.filter(pk=run_id, status__in=waiting).exists():
        assert time.perf_counter() < started + 60, "the worker did not run it within a minute"
        time.sleep(0.01)
    wall = time.perf_counter() - started
    run = WorkflowRun.objects.get(pk=run_id)
    return wall, float(run.metrics.get("total_seconds", 0.0))


def _locust(port: int, users: int, env: dict) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        prefix = f"{folder}/stats"
        subprocess.run(
            [
                sys.executable, "-m", "locust", "-f", "tests/benchmarks/locustfile.py",
                "--headless", "-u", str(users), "-r", str(max(1, users // 5)),
                "-t", f"{LOCUST_SECONDS}s", "--host", f"http://127.0.0.1:{port}",
                "--csv", prefix, "--only-summary", "--loglevel", "ERROR",
            ],
            cwd=ROOT, env={**os.environ, **env}, capture_output=True, timeout=LOCUST_SECONDS + 120,
        )  # fmt: skip
        with open(f"{prefix}_stats.csv") as handle:
            rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    return {
        "users": users,
        "rps": float(total["Requests/s"]),
        "p50": float(total["50%"]),
        "p95": float(total["95%"]),
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
    }


def _cpu_seconds() -> float:
    """Return the CPU time of this process and of its finished children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _verify(*args) -> tuple[float, float, str]:
    out = io.StringIO()
    cpu, wall = _cpu_seconds(), time.perf_counter()
    call_command("verify_audit_log", "--no-progress", *args, stdout=out)
    return time.perf_counter() - wall, _cpu_seconds() - cpu, out.getvalue()


def test_the_product_at_volume(transactional_db, capsys):
    lines = []

    def say(text=""):
        lines.append(text)
        with capsys.disabled():
            print(text, flush=True)

    say(
        f"\n=== Issue 18 benchmark: {os.cpu_count()} CPUs (load average "
        f"{os.getloadavg()[0]:.1f} at the start), PostgreSQL, gunicorn 2 sync workers"
    )
    admin = SuperUserFactory(username="bench-admin")
    admin_token = Token.objects.create(user=admin).key
    browser = Client()
    browser.force_login(admin)

    started = time.perf_counter()
    call_command("seed_volume", force=True, stdout=io.StringIO(), **SMALL)
    _analyze()
    small = _changelists(browser)
    rest = {
        "engagements": max(0, ENGAGEMENTS - SMALL["engagements"]),
        "runs": max(0, RUNS - SMALL["runs"]),
        "artefacts": max(0, ARTEFACTS - SMALL["artefacts"]),
        "audit": max(0, AUDIT - SMALL["audit"]),
    }
    call_command("seed_volume", force=True, stdout=io.StringIO(), **rest)
    _analyze()
    say(
        f"seeded {Engagement.objects.count():,} engagements, {RUNS:,} runs, "
        f"{Artefact.objects.count():,} artefacts, "
        f"{AuditLog.objects.count():,} audit entries in {time.perf_counter() - started:.0f} s"
    )
    full = _changelists(browser)

    # --- the API lists against the raw baseline ------------------------------------------
    queries = {
        f"/{name}/": _captured_list_sql(browser, admin_token, path) for name, path in LISTS.items()
    }
    product_port, baseline_port = _free_port(), _free_port()
    product = _serve("config.wsgi:application", product_port)
    baseline = _serve(
        "tests.benchmarks.baseline_app:application",
        baseline_port,
        BASELINE_QUERIES=json.dumps(queries),
        BASELINE_DSN=_dsn(),
    )
    worker = None
    try:
        say(
            "\nAPI list, page of 100 (p50 ms)   product   baseline   ratio"
            "   (server CPU ms per request: product  baseline  ratio)"
        )
        for name, path in LISTS.items():
            mine, mine_cpu = _per_request(
                f"http://127.0.0.1:{product_port}{path}", product, admin_token
            )
            floor, floor_cpu = _per_request(f"http://127.0.0.1:{baseline_port}/{name}/", baseline)
            say(
                f"  {name:<28} {mine:>9.1f} {floor:>10.1f} {mine / floor:>7.1f}x"
                f"   {mine_cpu:>35.1f} {floor_cpu:>9.1f} {mine_cpu / max(floor_cpu, 0.1):>6.1f}x"
            )
        actuary = _actuary()
        actuary_token = Token.objects.create(user=actuary).key
        mine, mine_cpu = _per_request(
            f"http://127.0.0.1:{product_port}{LISTS['audit-logs']}", product, actuary_token
        )
        engagements = EngagementMember.objects.filter(user=actuary).count()
        say(
            f"  audit-logs, an actuary on {engagements} engagement(s) {mine:>5.1f}"
            f"   (server CPU {mine_cpu:.1f} ms per request)"
        )

        say("\nAdmin changelist (ms, KB of HTML)   at 1k rows       at full volume   ratio")
        for name in CHANGELISTS:
            (a, a_kb), (b, b_kb) = small[name], full[name]
            say(
                f"  {name:<31} {a:>6.0f} ms {a_kb:>4.0f} KB  "
                f"{b:>6.0f} ms {b_kb:>4.0f} KB  {b / a:>5.2f}x"
            )

        entry = AuditLog.objects.exclude(user=None).order_by("-sequence").first()
        month_start = AuditLog.objects.order_by("sequence").values_list("created_at", flat=True)[
            AuditLog.objects.count() // 4
        ]
        filters = {
            "a month": {
                "created_after": month_start.isoformat(),
                "created_before": (month_start + datetime.timedelta(days=30)).isoformat(),
            },
            "user + 2 actions": {"user_id": entry.user_id, "action": "workflow_fail"},
            "a resource": {"resource_type": entry.resource_type, "resource_id": entry.resource_id},
        }
        say("\nAudit log filter, API page of 100 (p50 ms)")
        for name, params in filters.items():
            query = urllib.parse.urlencode({**params, "page_size": 100})
            url = f"http://127.0.0.1:{product_port}/api/v1/audit-logs/?{query}"
            say(f"  {name:<28} {_p50(url, admin_token):>9.1f}")

        # --- verify_audit_log ------------------------------------------------------------
        rows = AuditLog.objects.count()
        one_wall, one_cpu, _ = _verify("--workers", "1")
        all_wall, all_cpu, output = _verify()
        assert output.startswith("Audit log intact")
        say(
            f"\nverify_audit_log, {rows:,} rows: 1 process {rows / one_wall:,.0f} rows/s "
            f"({rows / one_cpu:,.0f} per CPU-second); {os.cpu_count()} processes "
            f"{rows / all_wall:,.0f} rows/s ({rows / all_cpu:,.0f} per CPU-second) = "
            f"{one_wall / all_wall:.1f}x; load average {os.getloadavg()[0]:.1f}"
        )

        # --- audited writes --------------------------------------------------------------
        writers = []
        for number in range(3):
            lead = UserFactory(username=f"bench-writer{number}", is_staff=True)
            engagement = Engagement.objects.filter(status=EngagementStatus.ACTIVE)[number]
            EngagementMember.objects.update_or_create(
                engagement=engagement, user=lead, defaults={"role": TeamRole.LEAD}
            )
            Engagement.objects.filter(pk=engagement.pk).update(lead_actuary=lead)
            engagement.refresh_from_db()
            writers.append((lead, engagement))
        level = _level(8, writers)
        say(
            f"\naudited writes, 8 concurrent writers: {level['per_second']:.0f}/s, "
            f"p50 {level['p50_ms']:.0f} ms, p95 {level['p95_ms']:.0f} ms, "
            f"{len(level['failures'])} failed"
        )
        assert not level["failures"]

        # --- locust, with a worker -------------------------------------------------------
        actuary = UserFactory(username="bench-actuary", is_staff=True)
        actuary.groups.add(LoadDemo().actuaries_group())
        mine = list(Engagement.objects.filter(status=EngagementStatus.ACTIVE)[10:30])
        for engagement in mine:
            EngagementMember.objects.create(
                engagement=engagement, user=actuary, role=TeamRole.ACTUARY
            )
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "run_workers"],
            cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        actuary_key = Token.objects.create(user=actuary).key
        overheads = [
            _idle_worker_run(product_port, actuary_key, mine[0].pk) for _ in range(IDLE_RUNS)
        ]
        say(
            f"\na run on an idle worker (chain ladder, {IDLE_RUNS} runs, median): "
            f"{statistics.median(o[0] for o in overheads):.2f} s from queue to result, "
            f"{statistics.median(o[1] for o in overheads):.2f} s of it the run's own work, "
            f"overhead {statistics.median(o[0] - o[1] for o in overheads):.2f} s "
            f"(WORKER_POLL_INTERVAL {settings.TASK_WORKERS['POLL_INTERVAL']} s)"
        )
        env = {
            "BENCH_TOKEN": actuary_key,
            "BENCH_ENGAGEMENTS": ",".join(str(e.pk) for e in mine),
            "BENCH_TRIANGLE": str(ROOT / "docs" / "files" / "paid.csv"),
        }
        say(f"\nlocust, mixed actuary workload, {LOCUST_SECONDS} s per level")
        say(
            f"  {'users':>5} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'requests':>9} {'failed':>7}"
        )
        for users in (10, 50):
            r = _locust(product_port, users, env)
            say(
                f"  {r['users']:>5} {r['rps']:>7.1f} {r['p50']:>7.0f} {r['p95']:>7.0f} "
                f"{r['requests']:>9} {r['failures']:>7}"
            )
        _wall, _cpu, output = _verify()
        say(f"\nafter the load test: {output.strip()[:60]}…")
        assert output.startswith("Audit log intact")
    finally:
        for process in (product, baseline, worker):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    Path(ROOT / "bench-results.txt").write_text("\n".join(lines) + "\n")
