"""Domain errors raised by the service layer and model lifecycle methods.

Every refusal is one of these; its message says what was refused and why, so the
admin can show it as is and the API can return it (one exception handler,
`records.api.exceptions.api_exception_handler`, maps them to HTTP statuses).
"""


class DomainError(Exception):
    """Base class: a business rule refused an operation; nothing was changed."""

    code = "domain_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidTransition(DomainError):
    """A lifecycle move that is not allowed from the object's current state."""

    code = "invalid_transition"

    def __init__(self, *, obj, move: str, current: str, allowed_from=()):
        self.obj = obj
        self.move = move
        self.current = current
        self.allowed_from = tuple(allowed_from)
        label = obj._meta.verbose_name
        # The states as people read them ("waiting for approval"), not their codes.
        words = _status_words(obj)
        allowed = ", ".join(sorted(words(state) for state in self.allowed_from)) or "nowhere"
        super().__init__(
            f"Cannot {move.replace('_', ' ')} {label} “{obj}”: it is {words(current)} "
            f"(allowed only from: {allowed})."
        )


def _status_words(obj):
    """Return a function naming a state of `obj`'s status field by its label, lowercased."""
    try:
        labels = dict(obj._meta.get_field("status").flatchoices)
    except Exception:
        labels = {}
    return lambda state: str(labels.get(state, str(state).replace("_", " "))).lower()


class NotAllowed(DomainError):
    """The acting user may not do this (independence, designation, qualification, team)."""

    code = "not_allowed"


class Conflict(DomainError):
    """The request conflicts with the current state of other data (stale hash, open runs, …)."""

    code = "conflict"


class InvalidInput(DomainError):
    """The operation was given input that breaks a rule (missing reason, bad parameters).

    `field` (optional) names the input at fault (`input_params`, `file`, `reason`, …):
    the API reports the message under it, the admin can show it next to the field.
    """

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class HistoryBypassRefused(NotAllowed):
    """A bulk write that would change tracked records without a history row."""

    code = "history_bypass"
