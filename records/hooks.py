"""Hooks: how a lower layer lets a higher app act without importing it.

Apps depend on each other one way only (see docs/developers/architecture.md): a lower app never
imports a higher one. When a lower app needs something only a higher one knows (who
may see an engagement, who asks for a sign-off, which rows of an engagement an app
holds), it declares a hook here and calls it; the higher app registers its function
in its `AppConfig.ready()`.

- `Hook`: one function, provided by exactly one app (calling it before it is
  registered is a configuration error, never a silent no-op).
- `HookList`: any number of functions, called in registration order, which is the
  order of INSTALLED_APPS (each app registers in its own `ready()`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from django.core.exceptions import ImproperlyConfigured

HOOK_NOT_REGISTERED = (
    "Nothing is registered for the hook “{name}” ({purpose}). The app that provides it "
    "registers it in its AppConfig.ready(): is it in INSTALLED_APPS?"
)
HOOK_TAKEN = (
    "The hook “{name}” is provided by {current} already; {other} cannot provide it too "
    "(a hook has exactly one provider)."
)


def _qualified_name(function: Callable) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', function)}"


class Hook:
    """One function a lower layer calls and exactly one higher app provides.

    Registering the same function again is harmless (a `ready()` run twice); a second,
    different provider is refused.
    """

    def __init__(self, name: str, purpose: str):
        self.name = name
        self.purpose = purpose
        self._function: Callable | None = None

    def __repr__(self) -> str:
        return f"<Hook {self.name}>"

    def register(self, function: Callable) -> Callable:
        """Make `function` the provider of this hook; return it (usable as a decorator)."""
        if self._function is not None and self._function is not function:
            raise ImproperlyConfigured(
                HOOK_TAKEN.format(
                    name=self.name,
                    current=_qualified_name(self._function),
                    other=_qualified_name(function),
                )
            )
        self._function = function
        return function

    @property
    def is_registered(self) -> bool:
        """Return whether an app provides this hook."""
        return self._function is not None

    @property
    def provider(self) -> Any:
        """Return what was registered (a function, or an object with the hook's methods)."""
        if self._function is None:
            raise ImproperlyConfigured(
                HOOK_NOT_REGISTERED.format(name=self.name, purpose=self.purpose)
            )
        return self._function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the provider; refuse (ImproperlyConfigured) if no app provides the hook."""
        return self.provider(*args, **kwargs)


class HookList:
    """Functions that several higher apps add to a lower one, called in registration order."""

    def __init__(self, name: str, purpose: str):
        self.name = name
        self.purpose = purpose
        self._functions: list[Callable] = []

    def __repr__(self) -> str:
        return f"<HookList {self.name}: {len(self._functions)}>"

    def register(self, function: Callable) -> Callable:
        """Add `function` (once; registering it again changes nothing); return it."""
        if function not in self._functions:
            self._functions.append(function)
        return function

    def __iter__(self) -> Iterator[Callable]:
        return iter(tuple(self._functions))

    def __len__(self) -> int:
        return len(self._functions)
