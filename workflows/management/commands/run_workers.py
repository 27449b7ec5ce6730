"""Run background workers that record heartbeats and reap dead ones (docs/operators/workers.md).

django-tasks-db's `db_worker` loop, with a heartbeat row per worker and the reaper
(`workflows.workers`). `--concurrency` (default WORKER_CONCURRENCY) worker processes
are started; with more than one, this process supervises them and starts a new one
when one dies. `--interval` defaults to WORKER_POLL_INTERVAL.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from workflows.selectors import worker_settings
from workflows.workers import Supervisor, run_worker, worker_options


class Command(BaseCommand):
    help = "Run background workers (heartbeats, reaper); --concurrency N starts N processes."

    def add_arguments(self, parser):
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="Worker processes to start (default: WORKER_CONCURRENCY, 1).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds an idle worker waits before looking for a task again "
            "(default: WORKER_POLL_INTERVAL, 0.2).",
        )
        parser.add_argument(
            "--queue-name",
            default="default",
            help="Queues to process, comma-separated ('*': all; default: default).",
        )
        parser.add_argument(
            "--max-tasks",
            type=int,
            default=None,
            help="Each worker exits after this many tasks (a supervisor starts another).",
        )
        parser.add_argument(
            "--batch",
            action="store_true",
            help="Run what is queued, then exit (one worker; for scripts and tests).",
        )
        parser.add_argument(
            "--worker-id", default=None, help="This worker's id (one worker only; ≤ 64 chars)."
        )
        parser.add_argument(
            "--no-reap",
            action="store_true",
            help="Do not run the reaper from this worker (others, or reap_runs, do).",
        )

    def handle(self, *args, **options):
        concurrency = options["concurrency"] or int(worker_settings()["CONCURRENCY"])
        if concurrency < 1:
            raise CommandError("--concurrency must be 1 or more.")
        if options["interval"] is not None and options["interval"] < 0:
            raise CommandError("--interval must be 0 or more.")
        if concurrency > 1 and (options["batch"] or options["worker_id"]):
            raise CommandError("--batch and --worker-id run one worker: drop --concurrency.")
        worker_id = options["worker_id"]
        if worker_id is not None and not 0 < len(worker_id) <= 64:
            raise CommandError("--worker-id must be 1 to 64 characters.")
        worker = worker_options(
            interval=options["interval"],
            queue_names=options["queue_name"].split(","),
            max_tasks=options["max_tasks"],
            batch=options["batch"],
            reap=not options["no_reap"],
        )
        if concurrency == 1:
            run_worker({**worker, "worker_id": worker_id})
        else:
            Supervisor(concurrency=concurrency, options=worker).run()
