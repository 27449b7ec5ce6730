"""Hooks and registries of the foundation: one provider each, in order, refused when wrong."""

import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

from records import scoping
from records.admin import AdminMove, PageExtension, register_page_extension
from records.admin.extensions import EXTENSION_MOVE_IN_BULK
from records.hooks import HOOK_NOT_REGISTERED, HOOK_TAKEN, Hook, HookList


def provider(**kwargs):
    return kwargs


def other_provider(**kwargs):
    return None


class TestHook:
    def test_calling_a_hook_nobody_provides_is_a_configuration_error(self):
        hook = Hook("run_awaiting_example", "ask the app above")
        message = HOOK_NOT_REGISTERED.format(
            name="run_awaiting_example", purpose="ask the app above"
        )
        with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
            hook(run=1)

    def test_a_registered_hook_calls_its_provider(self):
        hook = Hook("example", "an example")
        assert hook.register(provider) is provider
        assert hook.is_registered and hook(run=1) == {"run": 1}

    def test_registering_the_same_provider_again_changes_nothing(self):
        hook = Hook("example", "an example")
        hook.register(provider)
        hook.register(provider)
        assert hook.provider is provider

    def test_a_second_provider_is_refused(self):
        hook = Hook("example", "an example")
        hook.register(provider)
        message = HOOK_TAKEN.format(
            name="example",
            current=f"{__name__}.provider",
            other=f"{__name__}.other_provider",
        )
        with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
            hook.register(other_provider)
        assert hook.provider is provider


class TestHookList:
    def test_functions_run_in_registration_order_once_each(self):
        hooks = HookList("checks", "some checks")
        hooks.register(provider)
        hooks.register(other_provider)
        hooks.register(provider)
        assert list(hooks) == [provider, other_provider] and len(hooks) == 2


class TestRegistries:
    def test_the_apps_registered_the_engagement_access_rule(self, engagement, actuary, user):
        assert scoping.engagement_can_view(engagement=engagement, user=actuary)
        assert not scoping.engagement_can_view(engagement=engagement, user=user)
        assert list(scoping.engagements_visible_to(actuary)) == [engagement]

    def test_a_model_has_one_engagement_scope(self):
        scope = scoping.ENGAGEMENT_SCOPES["artefacts.artefact"]
        with pytest.raises(ImproperlyConfigured, match="has two engagement scopes"):
            scoping.register_engagement_scope("artefacts.Artefact", rows=lambda pk: Q(pk=pk))
        assert scoping.ENGAGEMENT_SCOPES["artefacts.artefact"] is scope

    def test_a_model_is_either_in_an_engagement_or_outside_them(self):
        with pytest.raises(ImproperlyConfigured, match="both scoped to engagements and outside"):
            scoping.register_outside_engagements("artefacts.Artefact", reason="no")
        assert "artefacts.artefact" not in scoping.OUTSIDE_ENGAGEMENTS

    def test_the_timeline_models_are_registered_in_the_order_of_the_apps(self):
        on_timeline = [
            label for label, scope in scoping.ENGAGEMENT_SCOPES.items() if scope.timeline
        ]
        assert on_timeline == [
            "engagements.engagement",
            "engagements.engagementmember",
            "workflows.workflowrun",
            "artefacts.artefact",
            "approvals.approval",
        ]  # not chat sessions: their owner's, the team sees their untitled audit events

    def test_a_page_extension_never_adds_a_bulk_action(self):
        move = AdminMove("example", "Example", provider, bulk=True)
        message = EXTENSION_MOVE_IN_BULK.format(move="example", model="engagements.engagement")
        with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
            register_page_extension("engagements.Engagement", PageExtension(moves=(move,)))
