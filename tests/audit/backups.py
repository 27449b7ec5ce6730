"""What the backup tests share: a command run quietly (the archive folder: conftest)."""

import io

from django.core.management import call_command


def call(name, *args) -> str:
    """Run a command without progress bars; return its stdout."""
    stdout = io.StringIO()
    call_command(name, *args, "--no-progress", stdout=stdout, stderr=io.StringIO())
    return stdout.getvalue()
