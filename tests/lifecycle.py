"""Table-driven lifecycle checks shared by the model tests of every stateful model."""

import re

import pytest
from django.apps import apps

from records.exceptions import InvalidTransition


def state_words(state: str) -> str:
    """Return a state as refusals name it: its label, lowercased ("waiting for approval")."""
    for model in apps.get_models():
        try:
            choices = dict(model._meta.get_field("status").flatchoices)
        except Exception:
            continue
        if state in choices:
            return re.escape(str(choices[state]).lower())
    return re.escape(state)


def check_every_move(obj, state, move, expected_target, call):
    """Put `obj` in `state`, apply `move` via `call(obj)`, and check the outcome.

    `expected_target` is the state the spec says the move leads to from `state`,
    or None when the spec forbids the move: then InvalidTransition names the
    move and the current state, and neither the row nor the object changes.
    """
    obj.status = state
    obj.save()
    if expected_target is None:
        words = move.replace("_", " ")
        with pytest.raises(
            InvalidTransition, match=rf"Cannot {words} .*: it is {state_words(state)} "
        ):
            call(obj)
        assert obj.status == state
        obj.refresh_from_db()
        assert obj.status == state
    else:
        call(obj)
        assert obj.status == expected_target
        obj.save()
        obj.refresh_from_db()
        assert obj.status == expected_target
