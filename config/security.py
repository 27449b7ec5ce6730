"""Login throttling: the answer to a locked-out client, and token authentication that counts.

django-axes counts failed logins per account and per IP address (settings
`LOGIN_FAILURE_LIMIT`, `LOGIN_COOLOFF_MINUTES`). Once either reaches the limit,
further attempts are refused until the cool-off has passed, even with the right
password: API clients get 429 with `Retry-After` and the API's error body, people
at the admin's login page get the page again with a sentence saying when to retry.
"""

from __future__ import annotations

import math

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.contrib.auth.signals import user_login_failed
from django.http import JsonResponse
from django.template.response import TemplateResponse
from rest_framework import authentication, exceptions

LOCKED_OUT = (
    "Too many failed logins for this account or from this address: logging in is "
    "refused for {minutes} minutes. Try again after that, or ask an administrator to "
    "unlock it."
)
API_PREFIX = "/api/"


def retry_after_seconds(request=None) -> int:
    """Return how long a locked-out client waits, in whole seconds."""
    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds())) if cool_off else 3600


def locked_out_message(request=None) -> str:
    """Return the sentence a locked-out client reads."""
    return LOCKED_OUT.format(minutes=math.ceil(retry_after_seconds(request) / 60))


def lockout_response(request, original_response=None, credentials=None):
    """Answer a login refused by the throttle: JSON 429 for the API, the login page otherwise."""
    seconds = retry_after_seconds(request)
    if request.path.startswith(API_PREFIX) or "json" in request.headers.get("Accept", ""):
        response = JsonResponse(
            {
                "detail": locked_out_message(request),
                "code": "locked_out",
                "retry_after": seconds,
            },
            status=429,
        )
    else:
        response = TemplateResponse(
            request,
            "registration/locked_out.html",
            {"message": locked_out_message(request), "title": "Login refused"},
            status=429,
        ).render()  # answered from the middleware, after views' responses are rendered
    response["Retry-After"] = str(seconds)
    return response


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes's throttle for every login that comes with a request (admin, API login page).

    Authentication without a request is our own code logging someone in (a
    management command, the test client), never a client on the network: axes would
    refuse it for lack of an address; this lets the next backend decide.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        """Refuse a locked-out login; pass a request-less one on to the next backend."""
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, with wrong tokens throttled like failed logins.

    A wrong token counts as a failed login from the client's address; once the
    address reaches the limit, every further wrong token answers 429 with
    Retry-After until the cool-off has passed. A valid token is never refused:
    tokens cannot be guessed, and scripts behind the same office address as an
    attacker must keep working. The lock-out check costs a query on failures only.
    """

    def authenticate(self, request):
        """Return (user, token) for a valid token; 401, or 429 once locked out, otherwise."""
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            django_request = request._request
            if AxesProxyHandler.is_allowed(django_request, {}):
                user_login_failed.send(
                    sender=__name__, credentials={"token": "********"}, request=django_request
                )
            if getattr(django_request, "axes_locked_out", False) or not (
                AxesProxyHandler.is_allowed(django_request, {})
            ):
                # The axes middleware answers for it, in the same words as any lock-out.
                django_request.axes_locked_out = True
                raise exceptions.Throttled(
                    wait=retry_after_seconds(django_request),
                    detail=locked_out_message(django_request),
                ) from None
            raise
