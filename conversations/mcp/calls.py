"""What a tool is, what a call knows, and how a call runs: validated, permitted, on record.

A tool (`Tool`) names its arguments as a pydantic model (whose JSON schema the agent
sees), the model permissions the REST API would demand for the same operation, and a
handler that calls the services. `call_tool` runs one call from start to end, in one
thread, synchronously (the server hands it to a worker thread): audit agent_invoke,
validate, check permissions, run, audit agent_complete or agent_error, append the chat
session's tool messages. Whatever goes wrong comes back as a `ToolFailure` the agent
reads, never an exception that would end the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ObjectDoesNotExist
from pydantic import BaseModel, ValidationError
from rest_framework.exceptions import ValidationError as DRFValidationError

from records.exceptions import Conflict, DomainError, InvalidInput, NotAllowed
from records.middleware import request_context

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser
    from django.db import models

    from conversations.models import Session

NOT_FOUND = "{what} {value} was not found (it does not exist, or it is not in your engagements)."
MISSING_PERMISSION = (
    "{user} may not {verb}: it needs the permission(s) {permissions}, which your account "
    "does not hold (the same rule as the REST API)."
)
UNKNOWN_TOOL = "There is no tool named {name!r}. The tools are: {names}."
INTERNAL_ERROR = (
    "The tool {name} failed on the server ({error_type}); nothing was changed by the failed "
    "step. The error is on record under trace id {trace_id}."
)
UNKNOWN_ARGUMENT = "unknown argument: this tool does not take it"
REQUIRED_ARGUMENT = "required"


class ToolFailure(Exception):
    """A call the back office refused or could not do: what the agent reads as a tool error.

    `argument` names the tool argument at fault, when one is; `code` says which kind
    of refusal it is (invalid, not_found, not_allowed, conflict, refused, error).
    """

    def __init__(self, message: str, *, code: str = "invalid", argument: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.argument = argument

    def as_dict(self) -> dict[str, Any]:
        """Return the failure as the structured content of the tool's error result."""
        return {"error": {"code": self.code, "message": self.message, "argument": self.argument}}


def not_found(what: str, value: Any, *, argument: str | None = None) -> ToolFailure:
    """Return the failure for an object the user cannot see, whether or not it exists."""
    return ToolFailure(
        NOT_FOUND.format(what=what, value=value), code="not_found", argument=argument
    )


@dataclass
class Touched:
    """An object a call read or changed, named so the record can link to it."""

    model: str  # "app_label.model_name"
    id: str
    label: str

    def as_dict(self) -> dict[str, str]:
        return {"model": self.model, "id": self.id, "label": self.label}


@dataclass
class CallContext:
    """Who calls, under which trace and chat session, and what the call touched."""

    user: AbstractUser
    trace_id: str
    chat_session: Session | None = None
    touched: list[Touched] = field(default_factory=list)
    engagement_id: uuid.UUID | None = None

    def touch(self, obj: models.Model) -> None:
        """Remember an object the call used (and its engagement, for the audit trail)."""
        entry = Touched(obj._meta.label_lower, str(obj.pk), str(obj)[:200])
        if all((t.model, t.id) != (entry.model, entry.id) for t in self.touched):
            self.touched.append(entry)
        if self.engagement_id is None:
            if obj._meta.label_lower == "engagements.engagement":
                self.engagement_id = obj.pk
            else:
                self.engagement_id = getattr(obj, "engagement_id", None)


@dataclass(frozen=True)
class Tool:
    """One tool: its name, what it does, its arguments, who may use it, and its handler."""

    name: str
    description: str
    arguments: type[BaseModel]
    handler: Callable[[CallContext, Any], dict[str, Any]]
    # Model permissions ("app_label.codename") the REST API demands for the same operation.
    permissions: tuple[str, ...] = ()
    # What the permission refusal says the user may not do ("create workflow runs").
    verb: str = "use this tool"
    read_only: bool = False

    def input_schema(self) -> dict[str, Any]:
        """Return the JSON schema of the arguments (what tools/list shows)."""
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        return schema

    def validate(self, arguments: dict[str, Any] | None) -> BaseModel:
        """Return the validated arguments; raise ToolFailure naming the first bad argument."""
        try:
            return self.arguments.model_validate(arguments or {})
        except ValidationError as error:
            raise argument_failure(error) from None

    def check_permissions(self, user: AbstractUser) -> None:
        """Raise ToolFailure unless the user holds the permissions the REST API would demand."""
        if self.permissions and not user.has_perms(self.permissions):
            raise ToolFailure(
                MISSING_PERMISSION.format(
                    user=user, verb=self.verb, permissions=", ".join(self.permissions)
                ),
                code="not_allowed",
            )


def argument_failure(error: ValidationError) -> ToolFailure:
    """Turn pydantic's errors into one message naming each argument at fault."""
    problems = []
    first = None
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "arguments"
        first = first or location
        if item["type"] == "extra_forbidden":
            text = UNKNOWN_ARGUMENT
        elif item["type"] == "missing":
            text = REQUIRED_ARGUMENT
        else:
            text = item["msg"]
        problems.append(f"{location}: {text}")
    return ToolFailure("Invalid argument(s): " + "; ".join(problems) + ".", argument=first)


def serializer_failure(
    error: DRFValidationError, argument_names: dict[str, str] | None = None
) -> ToolFailure:
    """Turn a REST API serializer's 400 into a failure naming the tool's arguments."""
    names = argument_names or {}
    detail = error.detail
    problems = []
    first = None
    if isinstance(detail, dict):
        for key, messages in detail.items():
            argument = names.get(key, key)
            first = first or argument
            problems.append(f"{argument}: {_flatten(messages)}")
    else:
        problems.append(_flatten(detail))
    return ToolFailure("Invalid argument(s): " + "; ".join(problems), argument=first)


def _flatten(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in messages.items())
    if isinstance(messages, list | tuple):
        return " ".join(_flatten(message) for message in messages)
    return str(messages)


def domain_failure(error: DomainError, argument_names: dict[str, str] | None = None) -> ToolFailure:
    """Turn a service's refusal into the failure the agent reads (the service's own words)."""
    if isinstance(error, InvalidInput):
        field_name = getattr(error, "field", None)
        argument = (argument_names or {}).get(field_name, field_name) if field_name else None
        return ToolFailure(error.message, code="invalid", argument=argument)
    if isinstance(error, NotAllowed):
        return ToolFailure(error.message, code="not_allowed")
    if isinstance(error, Conflict):
        return ToolFailure(error.message, code="conflict")
    return ToolFailure(error.message, code=error.code)


def validated(serializer_class, data: dict[str, Any], *, context, names=None, instance=None):
    """Return the data validated by a REST API serializer; ToolFailure naming the arguments."""
    serializer = serializer_class(instance, data=data, context=context)
    try:
        serializer.is_valid(raise_exception=True)
    except DRFValidationError as error:
        raise serializer_failure(error, names) from None
    return dict(serializer.validated_data)


@dataclass
class CallOutcome:
    """What a call answered: its result, or the failure; and what it touched."""

    result: dict[str, Any] | None = None
    failure: ToolFailure | None = None
    touched: list[Touched] = field(default_factory=list)


def run_tool(tool: Tool, context: CallContext, arguments: dict[str, Any] | None) -> CallOutcome:
    """Validate, check permissions, run the handler; return the outcome (never raise)."""
    try:
        parsed = tool.validate(arguments)
        tool.check_permissions(context.user)
        with request_context(
            acting_user=context.user,
            trace_id=context.trace_id,
            session_id=context.chat_session.pk if context.chat_session else None,
        ):
            result = tool.handler(context, parsed)
        return CallOutcome(result=result, touched=list(context.touched))
    except ToolFailure as failure:
        return CallOutcome(failure=failure, touched=list(context.touched))
    except DomainError as error:
        return CallOutcome(failure=domain_failure(error), touched=list(context.touched))
    except DRFValidationError as error:
        return CallOutcome(failure=serializer_failure(error), touched=list(context.touched))
    except ObjectDoesNotExist as error:
        failure = ToolFailure(str(error) or "Not found.", code="not_found")
        return CallOutcome(failure=failure, touched=list(context.touched))
