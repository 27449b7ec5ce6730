"""Who an agent acts as: the active user of a DRF API token, looked up on every call.

The token is looked up each time (not once per connection), so revoking a token or
deactivating its user stops an agent at its next call, and permission changes apply
at once, as they do for the REST API.
"""

from __future__ import annotations

from rest_framework.authtoken.models import Token

TOKEN_ENVIRONMENT_VARIABLE = "AI_ACTUARY_TOKEN"
AUTHORIZATION_SCHEME = "token"


def user_for_token(key: str | None):
    """Return the active user the API token `key` belongs to, or None."""
    if not key:
        return None
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


def token_from_authorization(header: str | None) -> str | None:
    """Return the key of an `Authorization: Token <key>` header, or None."""
    parts = (header or "").split()
    if len(parts) != 2 or parts[0].lower() != AUTHORIZATION_SCHEME:
        return None
    return parts[1]
