"""Settle the runs of dead workers now (workers do it themselves every WORKER_REAP_INTERVAL).

A worker is dead when its heartbeat is older than WORKER_DEAD_AFTER seconds. Its
started run is failed, a run it took but had not started is requeued, and each is
audited (`workflows.services.workers`). Exit status 0; the output lists what was done.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from workflows.selectors import workers_alive
from workflows.services.workers import workers_reap

NOTHING = "No dead workers. {alive} alive."
REAPED = "Dead worker {worker} on {host} (pid {pid}, last heartbeat {last_seen}): {what}."


class Command(BaseCommand):
    help = "Fail (or requeue) the workflow runs of workers that stopped sending heartbeats."

    def handle(self, *args, **options):
        reaped = workers_reap()
        for worker in reaped:
            what = (
                worker.outcome if worker.run_id is None else f"run {worker.run_id} {worker.outcome}"
            )
            self.stdout.write(
                REAPED.format(
                    worker=worker.worker_id,
                    host=worker.hostname,
                    pid=worker.pid,
                    last_seen=f"{worker.last_seen_at:%Y-%m-%d %H:%M:%S %Z}",
                    what=what,
                )
            )
        if not reaped:
            self.stdout.write(NOTHING.format(alive=workers_alive()))
