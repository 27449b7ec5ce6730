"""What `purge_deleted` hard-deletes, model by model: rules the apps register.

The command (`audit.management.commands.purge_deleted`) is the engine: it finds the
soft-deleted rows of every model that has a rule, deleted before the cutoff, and
purges them one by one, each in its own transaction, in the order of the rules'
`stage` (what points to a row goes before it: a later version before the one it
builds on, artefacts before the runs they name, everything before the engagement
that holds it). For each row it asks the rule's `keep` whether something still
needs the row (a reason to show, or "") and, if nothing does, calls its `purge`.

The rules belong to the apps that know what protects a row, registered in their
`AppConfig.ready()` (`register_purge_rule`): approvals those of engagements,
workflow runs and artefacts, whose protection is the approved work they hold or
serve; conversations that of chat sessions. The audit app imports none of them.

A rule talks to the running purge through `PurgeRun`: whether it is a dry run,
which rows are gone already, the files a purged row frees, the rows deleted with
it, and the audit event of the purge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from django.core.files.storage import Storage
    from django.db import models

PURGE_RULE_TWICE = "{label} has two purge rules; a model has one."


class PurgeRun(Protocol):
    """What a purge rule may ask of, and tell, the purge that runs it."""

    dry_run: bool

    def purged_ids(self, model: type[models.Model]) -> set:
        """Return the ids of `model` rows purged by this run so far (committed)."""

    def mark_purged(self, record: models.Model) -> None:
        """Note that `record` is gone (or, in a dry run, would be) once this row commits."""

    def count_inside(self, rows: int) -> None:
        """Count rows deleted with the purged row (a chat's messages, an engagement's content)."""

    def free_file(self, name: str, *, storage: Storage, still_used: Callable[[], bool]) -> None:
        """Remove the stored file `name` once the row has committed, unless `still_used()`.

        `still_used` is asked then, when `purged_ids` holds the rows purged by that time
        (identical bytes are shared: a file stays while any remaining row names it).
        """

    def record(
        self,
        action: str,
        record: models.Model,
        pk: Any,
        description: str,
        before: dict,
        *,
        engagement_id: Any,
        cascade_of: models.Model | None = None,
        **metadata: Any,
    ) -> None:
        """Record the purge of one row as an audit event (the last write of its transaction)."""


@dataclass(frozen=True)
class PurgeRule:
    """How the soft-deleted rows of one model are purged.

    - `stage`: rules run in ascending stage (children before parents);
    - `order_by`: the order of the rows within the stage;
    - `keep(record, run)`: why the row must stay (shown), or "" to purge it;
    - `purge(record, run)`: delete the row (not in a dry run) and record the purge.
    """

    label: str
    stage: int
    keep: Callable[[Any, PurgeRun], str]
    purge: Callable[[Any, PurgeRun], None]
    order_by: tuple[str, ...] = ("pk",)

    @property
    def model(self) -> type[models.Model]:
        """Return the model whose rows this rule purges."""
        return apps.get_model(self.label)


# label → rule, in registration order (the order the summary counts them in).
PURGE_RULES: dict[str, PurgeRule] = {}


def register_purge_rule(
    model: str,
    *,
    stage: int,
    keep: Callable[[Any, PurgeRun], str],
    purge: Callable[[Any, PurgeRun], None],
    order_by: tuple[str, ...] = ("pk",),
) -> PurgeRule:
    """Declare how the soft-deleted rows of `model` ("app_label.ModelName") are purged."""
    label = model.lower()
    rule = PurgeRule(label, stage, keep, purge, order_by)
    current = PURGE_RULES.get(label)
    if current is not None and current != rule:
        raise ImproperlyConfigured(PURGE_RULE_TWICE.format(label=label))
    PURGE_RULES[label] = rule
    return rule


def purge_rules() -> list[PurgeRule]:
    """Return the rules in the order the purge applies them (stage, then registration)."""
    return sorted(PURGE_RULES.values(), key=lambda rule: rule.stage)
