"""`Authorization: Token <key>`: the API client whose token hash matches, if still active."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .models import ApiClient, hash_key

# last_used_at is written at most this often per client: not a write on every request.
TOUCH_EVERY = dt.timedelta(minutes=5)


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
        # Revocation takes effect at once: the row is read on every request (one indexed
        # lookup), never cached.
        client = ApiClient.objects.filter(key_hash=hash_key(key), is_active=True).first()
        if client is None:
            raise exceptions.AuthenticationFailed(
                _("Unknown or revoked token."), code="invalid_token"
            )
        now = timezone.now()
        if client.last_used_at is None or now - client.last_used_at > TOUCH_EVERY:
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        return ClientUser(client), client

    def authenticate_header(self, request) -> str:
        return self.keyword


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
