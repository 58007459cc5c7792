"""Stores and products."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Store(models.Model):
    code = models.CharField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    city = models.CharField(_("city"), max_length=100, blank=True)
    address = models.CharField(_("address"), max_length=255, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default=settings.TIME_ZONE)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}" if self.name != self.code else self.code


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=255)
    inn = models.CharField(_("international non-proprietary name"), max_length=255, blank=True)
    pack_size = models.PositiveIntegerField(
        _("pack size"), null=True, blank=True, help_text=_("Doses or units in one pack.")
    )
    prescription_only = models.BooleanField(_("prescription only"), default=False)
    category = models.CharField(_("category"), max_length=100, blank=True)
    needs_review = models.BooleanField(
        _("needs completion"),
        default=False,
        help_text=_("Created from a till line; complete it from the chain's catalogue."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"
