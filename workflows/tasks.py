"""Background tasks of the workflows app, on Django's tasks framework (`django.tasks`).

The backend is chosen by the TASKS setting (config/settings/base.py): the database
backend by default (workers: `manage.py db_worker`), the immediate backend in tests,
or any other django.tasks backend (RQ, Celery, …) without changing this module.
"""

from django.tasks import task

from .runner import execute_run


@task
def execute_workflow_run(run_id: str) -> dict:
    """Execute the queued workflow run `run_id`; a second delivery of the task does nothing.

    Return how the run ended (a JSON-ready report), which the backend stores as the
    task's result.
    """
    return execute_run(run_id).as_dict()
