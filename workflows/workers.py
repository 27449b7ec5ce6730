"""The worker fleet: django-tasks-db's worker with a heartbeat, a reaper and a supervisor.

`manage.py run_workers` starts WORKER_CONCURRENCY worker processes (settings
`TASK_WORKERS`). Each is django-tasks-db's own worker loop (`db_worker`) polling every
WORKER_POLL_INTERVAL seconds, plus:

- a heartbeat: the worker writes its `WorkerHeartbeat` row when it starts, and a thread
  of its own refreshes it every WORKER_HEARTBEAT_INTERVAL seconds (a long step keeps it
  beating); the row names the task and run being executed, and goes when the worker
  stops cleanly;
- the reaper: every WORKER_REAP_INTERVAL seconds that thread settles the runs of
  workers silent for WORKER_DEAD_AFTER seconds (`workflows.services.workers`).

With a concurrency above one, the command's own process supervises the workers: it
starts each in a child process, starts a new one when one dies, and passes SIGTERM
and SIGINT on to them (each lets its current run finish, as `db_worker` does).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from typing import Any

from django.db import connection, connections
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from .models import WorkerHeartbeat
from .selectors import worker_settings
from .services.workers import workers_reap

logger = logging.getLogger(__name__)

# The task whose one argument is a workflow run's id (workflows.tasks).
RUN_TASK_PATH = "workflows.tasks.execute_workflow_run"
# How long the supervisor waits before starting a worker again after one died.
RESTART_DELAY_SECONDS = 1.0


def new_worker_id() -> str:
    """Return a worker id unique across hosts: host name, pid and a random tail (≤ 64)."""
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{get_random_string(8)}"


class HeartbeatWorker(Worker):
    """django-tasks-db's worker that records its heartbeat and runs the reaper."""

    def __init__(
        self,
        *,
        heartbeat_interval: float,
        reap_interval: float,
        reap: bool = True,
        **options: Any,
    ):
        super().__init__(**options)
        self.heartbeat_interval = heartbeat_interval
        self.reap_interval = reap_interval
        self.reap = reap
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Register, start the heartbeat thread, run the loop; unregister on a clean stop."""
        self._register()
        self._thread = threading.Thread(
            target=self._beat_forever, name=f"heartbeat-{self.worker_id}", daemon=True
        )
        self._thread.start()
        try:
            super().run()
        finally:
            self._stopping.set()
            self._thread.join(timeout=self.heartbeat_interval + 5)
            WorkerHeartbeat.objects.filter(worker_id=self.worker_id).delete()

    def run_task(self, db_task_result: DBTaskResult) -> None:
        """Name the task (and run) on the heartbeat while it executes."""
        WorkerHeartbeat.objects.filter(worker_id=self.worker_id).update(
            task_id=db_task_result.pk,
            run_id=_run_id_of(db_task_result),
            last_seen_at=timezone.now(),
        )
        try:
            super().run_task(db_task_result)
        finally:
            WorkerHeartbeat.objects.filter(worker_id=self.worker_id).update(
                task_id=None, run_id=None
            )

    def _register(self) -> None:
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={
                "hostname": socket.gethostname()[:255],
                "pid": os.getpid(),
                "started_at": timezone.now(),
                "last_seen_at": timezone.now(),
            },
        )

    def _beat_forever(self) -> None:
        """Refresh the heartbeat until the worker stops; reap dead workers now and then."""
        next_reap = time.monotonic() if self.reap else float("inf")
        try:
            while not self._stopping.wait(self.heartbeat_interval):
                try:
                    self._beat()
                    if time.monotonic() >= next_reap:
                        next_reap = time.monotonic() + self.reap_interval
                        workers_reap()
                except Exception:
                    # A database hiccup must not kill the thread: the next beat tries again.
                    logger.exception("Worker %s could not record its heartbeat", self.worker_id)
                    connection.close()
        finally:
            connection.close()

    def _beat(self) -> None:
        updated = WorkerHeartbeat.objects.filter(worker_id=self.worker_id).update(
            last_seen_at=timezone.now()
        )
        if not updated:
            # Reaped while alive (the process was frozen past the limit): count again.
            logger.warning("Worker %s had been reaped as dead; registering again", self.worker_id)
            self._register()


def _run_id_of(db_task_result: DBTaskResult) -> str | None:
    if db_task_result.task_path != RUN_TASK_PATH:
        return None
    args = (db_task_result.args_kwargs or {}).get("args") or [None]
    return args[0]


def worker_options(**overrides: Any) -> dict[str, Any]:
    """Return a HeartbeatWorker's options: the settings, then `overrides` (not None)."""
    options = worker_settings()
    values = {
        "queue_names": ["default"],
        "interval": options["POLL_INTERVAL"],
        "batch": False,
        "backend_name": "default",
        "startup_delay": True,
        "max_tasks": None,
        "excluded_queue_names": [],
        "heartbeat_interval": options["HEARTBEAT_INTERVAL"],
        "reap_interval": options["REAP_INTERVAL"],
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    return values


def run_worker(options: dict[str, Any]) -> None:
    """Run one HeartbeatWorker in this process until it is stopped."""
    worker = HeartbeatWorker(worker_id=options.pop("worker_id", None) or new_worker_id(), **options)
    worker.configure_signals()
    worker.run()


def _child(options: dict[str, Any]) -> None:
    # A process group of its own: a terminal's Ctrl-C reaches the supervisor only, which
    # passes it on once (twice would stop the current run).
    os.setpgrp()
    # The parent's connections were closed before the fork; open our own.
    connections.close_all()
    run_worker(dict(options))


class Supervisor:
    """Keep `concurrency` worker processes alive; pass stop signals on to them."""

    def __init__(self, *, concurrency: int, options: dict[str, Any]):
        self.concurrency = concurrency
        self.options = options
        self.children: list[multiprocessing.Process] = []
        self.stopping = False
        self.context = multiprocessing.get_context("fork")

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        connections.close_all()
        self.children = [self._start() for _ in range(self.concurrency)]
        logger.info("Started %d workers (pids %s)", self.concurrency, self.pids())
        while not self.stopping:
            for index, child in enumerate(self.children):
                if not child.is_alive() and not self.stopping:
                    logger.warning(
                        "Worker pid %s exited (%s); starting another", child.pid, child.exitcode
                    )
                    time.sleep(RESTART_DELAY_SECONDS)
                    self.children[index] = self._start()
            time.sleep(0.5)
        for child in self.children:
            child.join()

    def pids(self) -> list[int | None]:
        return [child.pid for child in self.children]

    def _start(self) -> multiprocessing.Process:
        child = self.context.Process(target=_child, args=(self.options,), daemon=False)
        child.start()
        return child

    def _stop(self, signum: int, frame: Any) -> None:
        # A second signal is passed on too: it stops the workers' current runs.
        self.stopping = True
        for child in self.children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signum)
