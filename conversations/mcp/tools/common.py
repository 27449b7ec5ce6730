"""What the tools share: the REST API's serializer context, scoped look-ups, bounded waits."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any

from django.conf import settings
from django.test import RequestFactory
from pydantic import BaseModel as PydanticModel
from pydantic import ConfigDict, Field
from rest_framework.request import Request

from records.scoping import scope_to_user

from ..calls import not_found

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser
    from django.db import models

    from ..calls import CallContext

# How often a wait looks at a run again.
POLL_SECONDS = 1.0
DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 200

Limit = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_LIST_LIMIT,
        description=f"At most this many rows (1 to {MAX_LIST_LIMIT}).",
    ),
]


class Arguments(PydanticModel):
    """Arguments of a tool: unknown ones are refused, naming them, never ignored."""

    model_config = ConfigDict(extra="forbid")


def api_context(user: AbstractUser) -> dict[str, Any]:
    """Return the serializer context the REST API would give `user`'s request."""
    request = Request(RequestFactory().post("/mcp/"))
    request.user = user
    return {"request": request}


def visible(
    context: CallContext,
    queryset: models.QuerySet,
    pk: uuid.UUID | str,
    *,
    what: str,
    argument: str,
    engagement_path: str = "engagement",
):
    """Return the row `pk` of `queryset` if the user's engagements hold it; else not found.

    The same scoping as the REST API: another team's object does not exist.
    """
    rows = scope_to_user(queryset, context.user, engagement_path=engagement_path)
    obj = rows.filter(pk=pk).first()
    if obj is None:
        raise not_found(what, pk, argument=argument)
    context.touch(obj)
    return obj


def max_wait_seconds() -> int:
    """Return the longest a tool may wait for a run (setting MCP_MAX_WAIT_SECONDS)."""
    return int(getattr(settings, "MCP_MAX_WAIT_SECONDS", 120))


def wait_until(check, *, seconds: float):
    """Call `check()` until it returns something truthy or `seconds` have passed; return it."""
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        answer = check()
        if answer or time.monotonic() >= deadline:
            return answer
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def user_label(user) -> dict[str, Any] | None:
    """Return a user as the tools show one: id, username and name."""
    if user is None:
        return None
    return {"id": user.pk, "username": user.get_username(), "name": user.get_full_name()}
