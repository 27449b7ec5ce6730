"""Engagements as the lower layers see them: who may see which, and how rows reach one.

The engagement is the unit of access and of backup, but `engagements` sits above
`records` and `audit`, which cannot import it. Two registries, filled by the apps
in their `AppConfig.ready()`, let them apply its rules anyway:

- **The access rule** (`engagement_access`), registered by the engagements app
  (`engagements.selectors`): which engagements a user may see, and which rows of
  a queryset belong to them. The API and admin bases (`records.api`,
  `records.admin`) and the audit trail's admin and API go through the functions
  below, which apply it.
- **Engagement scopes**, one per model, registered by the app that owns the model
  (`register_engagement_scope`): the rows of one engagement (backups), the history
  rows that belong to it (backups, the timeline) and the choices a form offers.
  A model that belongs to no engagement says why (`register_outside_engagements`);
  a test checks that every model is in one of the two.

Model references stay string labels (`ENGAGEMENT_MODEL`), as foreign keys across
layers do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q, QuerySet

from .hooks import Hook

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser
    from django.db import models

ENGAGEMENT_MODEL = "engagements.Engagement"

SCOPE_TWICE = "{label} has two engagement scopes: {first} and {second}; a model has one."
SCOPE_AND_OUTSIDE = "{label} is both scoped to engagements and outside them."


class EngagementAccess(Protocol):
    """The rule of who sees which engagement, as the engagements app provides it."""

    def engagements_visible_to(self, user: AbstractUser | None) -> QuerySet: ...

    def scope_to_user(
        self, queryset: QuerySet, user: AbstractUser | None, *, engagement_path: str = ...
    ) -> QuerySet: ...

    def engagement_can_view(self, *, engagement, user: AbstractUser | None) -> bool: ...

    def sees_every_engagement(self, user: AbstractUser | None) -> bool: ...


engagement_access = Hook("engagement_access", "who may see which engagement: engagements.selectors")


def engagement_model() -> type[models.Model]:
    """Return the Engagement model (by its label: it belongs to a higher layer)."""
    return apps.get_model(ENGAGEMENT_MODEL)


def engagements_visible_to(user: AbstractUser | None) -> QuerySet:
    """Return the engagements `user` may see (the engagements app's rule)."""
    return engagement_access.provider.engagements_visible_to(user)


def scope_to_user(
    queryset: QuerySet, user: AbstractUser | None, *, engagement_path: str = "engagement"
) -> QuerySet:
    """Return `queryset` narrowed to rows of engagements `user` may see.

    `engagement_path` is the lookup from the queryset's model to its engagement
    ("" for engagements themselves).
    """
    return engagement_access.provider.scope_to_user(queryset, user, engagement_path=engagement_path)


def engagement_can_view(*, engagement, user: AbstractUser | None) -> bool:
    """Return whether `user` may see `engagement` and everything in it."""
    return engagement_access.provider.engagement_can_view(engagement=engagement, user=user)


def sees_every_engagement(user: AbstractUser | None) -> bool:
    """Return whether `user` sees every engagement (superuser or the global view permission)."""
    return engagement_access.provider.sees_every_engagement(user)


# --- Engagement scopes ------------------------------------------------------------------

ScopeRule = Callable[[uuid.UUID], Q]
ChoiceRule = Callable[[QuerySet, "AbstractUser"], QuerySet]


@dataclass(frozen=True)
class EngagementScope:
    """How the rows of one model reach their engagement.

    - `rows(engagement_id)`: the rows of that engagement, in every state (soft-deleted
      ones included): what an engagement backup holds;
    - `history(engagement_id)`: history rows beyond those of the rows still there
      (deleted rows keep their history, which names the engagement); None: the history
      model's own `engagement` field, if it has one;
    - `timeline(engagement_id)`: the history rows the engagement's timeline shows;
      None: the model is not on the timeline;
    - `choices(queryset, user)`: the rows a form offers `user`; None: the rows of the
      engagements the user may see, through the model's `engagement` field.
    """

    label: str
    rows: ScopeRule
    history: ScopeRule | None = None
    timeline: ScopeRule | None = None
    choices: ChoiceRule | None = None

    @property
    def model(self) -> type[models.Model]:
        """Return the model this scope belongs to."""
        return apps.get_model(self.label)


# label ("app_label.modelname") → scope, in registration order (the order of INSTALLED_APPS).
ENGAGEMENT_SCOPES: dict[str, EngagementScope] = {}
# label → why its rows belong to no engagement.
OUTSIDE_ENGAGEMENTS: dict[str, str] = {}


def in_engagement(engagement_id: uuid.UUID) -> Q:
    """Return the rule of most models: their own `engagement` foreign key."""
    return Q(engagement_id=engagement_id)


def register_engagement_scope(
    model: str,
    *,
    rows: ScopeRule = in_engagement,
    history: ScopeRule | None = None,
    timeline: ScopeRule | None = None,
    choices: ChoiceRule | None = None,
) -> EngagementScope:
    """Declare how the rows of `model` ("app_label.ModelName") reach their engagement."""
    label = model.lower()
    scope = EngagementScope(label, rows, history=history, timeline=timeline, choices=choices)
    current = ENGAGEMENT_SCOPES.get(label)
    if current is not None and current != scope:
        raise ImproperlyConfigured(SCOPE_TWICE.format(label=label, first=current, second=scope))
    if label in OUTSIDE_ENGAGEMENTS:
        raise ImproperlyConfigured(SCOPE_AND_OUTSIDE.format(label=label))
    ENGAGEMENT_SCOPES[label] = scope
    return scope


def register_outside_engagements(model: str, *, reason: str) -> None:
    """Declare that the rows of `model` belong to no engagement, and why."""
    label = model.lower()
    if label in ENGAGEMENT_SCOPES:
        raise ImproperlyConfigured(SCOPE_AND_OUTSIDE.format(label=label))
    OUTSIDE_ENGAGEMENTS[label] = reason


def engagement_scope_of(model: type[models.Model]) -> EngagementScope | None:
    """Return the engagement scope of `model`, or None if it has none."""
    return ENGAGEMENT_SCOPES.get(model._meta.label_lower)


def scoped_choices(queryset: QuerySet, user: AbstractUser) -> QuerySet:
    """Return the rows of `queryset` a form may offer `user`.

    The model's registered choice rule if it has one (engagements: those the user
    sees; chat sessions: their owner's); else the rows of the engagements the user
    may see, for models with an engagement foreign key; else the queryset as it is.
    """
    scope = engagement_scope_of(queryset.model)
    if scope is not None and scope.choices is not None:
        return scope.choices(queryset, user)
    if any(f.name == "engagement" and f.is_relation for f in queryset.model._meta.get_fields()):
        return scope_to_user(queryset, user)
    return queryset
