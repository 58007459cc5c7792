"""API clients (the chain's integrations) and the responses kept for idempotency keys."""

from __future__ import annotations

import hashlib
import secrets

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    CUSTOMERS_READ = "customers:read", _("Read customers")
    CUSTOMERS_WRITE = "customers:write", _("Register and update customers")
    ORDERS_READ = "orders:read", _("Read orders and purchases")
    ORDERS_WRITE = "orders:write", _("Place, complete, cancel and return orders")
    BONUSES_READ = "bonuses:read", _("Read bonus balances and ledgers")
    CHECKOUT = "checkout:quote", _("Ask for checkout quotes")
    RESERVATIONS_READ = "reservations:read", _("Read reservations")
    RESERVATIONS_WRITE = "reservations:write", _("Reserve products and cancel reservations")
    NOTIFICATIONS_READ = "notifications:read", _("Read sent notifications")


# 1,000 requests/s: above what one 2-core box serves, so only a runaway client is stopped.
DEFAULT_RATE = "60000/min"


def hash_key(key: str) -> str:
    """SHA-256 of a token: a password hasher would cost milliseconds on every request, and a
    random 256-bit token needs no stretching."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiClient(models.Model):
    """One integration (mobile app, website, POS, contact centre) with its token and scopes."""

    class Kind(models.TextChoices):
        APP = "app", _("Mobile app")
        SITE = "site", _("Website")
        POS = "pos", _("Pharmacy till (POS)")
        CONTACT_CENTRE = "contact_centre", _("Contact centre")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.OTHER)
    key_prefix = models.CharField(
        _("token prefix"), max_length=8, editable=False, help_text=_("To recognise a token.")
    )
    key_hash = models.CharField(_("token hash"), max_length=64, unique=True, editable=False)
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    throttle_rate = models.CharField(
        _("request limit"),
        max_length=20,
        default=DEFAULT_RATE,
        help_text=_("Requests per second, minute, hour or day, e.g. 6000/min."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def new_key(self) -> str:
        """Sets a fresh token and returns it: shown once, stored only as its hash."""
        key = secrets.token_urlsafe(32)
        self.key_prefix = key[:8]
        self.key_hash = hash_key(key)
        return key

    def revoke(self) -> None:
        self.is_active = False
        self.revoked_at = timezone.now()
        self.save(update_fields=["is_active", "revoked_at"])

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotentRequest(models.Model):
    """The first response to a request sent with an `Idempotency-Key` header: a retry with the
    same key and body gets it again; the same key with another body is refused (422)."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    endpoint = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("idempotent request")
        verbose_name_plural = _("idempotent requests")
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="idempotent_request_unique")
        ]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.key}"
