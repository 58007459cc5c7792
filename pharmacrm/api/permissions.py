"""Scopes: each view says which scope each method needs; a client without it gets 403."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions

from .auth import ClientUser


class HasScope(permissions.BasePermission):
    """The view's `scopes` maps HTTP methods to the scope they need (`"*"`: any method)."""

    message = _("This API client was not given the scope this call needs.")
    code = "missing_scope"

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not isinstance(user, ClientUser):
            return False
        scopes = getattr(view, "scopes", {})
        needed = scopes.get(request.method) or scopes.get("*")
        if needed is None:
            # A method the view does not handle answers 405 (DRF checks permissions first);
            # one it handles but gives no scope is nobody's.
            return not hasattr(view, request.method.lower())
        return user.client.has_scope(needed)


def scoped(**scopes: str) -> dict[str, str]:
    """`scopes = scoped(GET="customers:read", POST="customers:write")`; HEAD and OPTIONS
    follow GET."""
    if "GET" in scopes:
        scopes.setdefault("HEAD", scopes["GET"])
        scopes.setdefault("OPTIONS", scopes["GET"])
    return scopes
