"""`Authorization: Token <key>`: the API client whose token hash matches, if still active."""

from __future__ import annotations

import datetime as dt

from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from pharmacrm.shared_cache import config_cached, config_changed

from .models import ApiClient, hash_key

# last_used_at is written at most this often per client: not a write on every request.
TOUCH_EVERY = dt.timedelta(minutes=5)
CLIENTS = "api_clients"  # the shared version of the clients each process remembers


class ClientUser:
    """What `request.user` is for an API call: the client, authenticated, never staff."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.pk = None
        self.username = f"api:{client.name}"

    def __str__(self) -> str:
        return self.username


class TokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("Give the token as “Authorization: Token <key>”."), code="invalid_token"
            )
        try:
            key = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(
                _("The token has characters a token never has."), code="invalid_token"
            ) from None
        client = _active_client(hash_key(key))
        if client is None:
            raise exceptions.AuthenticationFailed(
                _("Unknown or revoked token."), code="invalid_token"
            )
        now = timezone.now()
        if client.last_used_at is None or now - client.last_used_at > TOUCH_EVERY:
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
            client.last_used_at = now  # the process's copy too
        return ClientUser(client), client

    def authenticate_header(self, request) -> str:
        return self.keyword


def _active_client(key_hash: str) -> ApiClient | None:
    """The active client whose token has this hash. Each process keeps the clients it has seen
    (a query costs more than the rest of a lookup's authentication); any save or delete of a
    client (revoking, rotating, editing in the admin) makes every process forget them before
    its next request, so a revoked token stops working at once. Unknown tokens are always
    looked up, never remembered."""
    known: dict[str, ApiClient] = config_cached(CLIENTS, dict)
    client = known.get(key_hash)
    if client is None:
        client = ApiClient.objects.filter(key_hash=key_hash, is_active=True).first()
        if client is not None:
            known[key_hash] = client
    return client


def _client_changed(sender, **kwargs) -> None:
    config_changed(CLIENTS)


post_save.connect(_client_changed, sender=ApiClient, dispatch_uid="api.client_saved")
post_delete.connect(_client_changed, sender=ApiClient, dispatch_uid="api.client_deleted")


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "pharmacrm.api.auth.TokenAuthentication"
    name = "token"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`; create a client with `manage.py create_api_client`.",
        }
