"""Discounts: the cumulative discount by lifetime total and personal discounts."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from customers.models import Customer

from .reference import BonusDiscountType

PERCENT = {
    "max_digits": 5,
    "decimal_places": 2,
    "validators": [MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
}


class CumulativeDiscountTier(models.Model):
    """From `threshold` roubles of lifetime purchases the customer gets `percent` off."""

    threshold = models.DecimalField(
        _("lifetime total from"),
        max_digits=14,
        decimal_places=2,
        unique=True,
        validators=[MinValueValidator(Decimal("0"))],
    )
    percent = models.DecimalField(_("discount, %"), **PERCENT)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("cumulative discount tier")
        verbose_name_plural = _("cumulative discount tiers")
        ordering = ["threshold"]

    def __str__(self) -> str:
        return _("%(percent)s %% from %(threshold)s ₽") % {
            "percent": self.percent,
            "threshold": self.threshold,
        }


class PersonalDiscount(models.Model):
    """A discount granted to one customer for a period."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="personal_discounts",
        verbose_name=_("customer"),
    )
    discount_type = models.ForeignKey(
        BonusDiscountType,
        on_delete=models.PROTECT,
        limit_choices_to={"kind": BonusDiscountType.Kind.DISCOUNT},
        related_name="+",
        verbose_name=_("discount type"),
    )
    percent = models.DecimalField(_("discount, %"), **PERCENT)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(
        _("valid until"), null=True, blank=True, help_text=_("Inclusive; empty: no end.")
    )
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    class Meta:
        verbose_name = _("personal discount")
        verbose_name_plural = _("personal discounts")
        ordering = ["-valid_from", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_until__isnull=True)
                | models.Q(valid_until__gte=models.F("valid_from")),
                name="personal_discount_dates",
            ),
        ]
        indexes = [models.Index(fields=["customer", "valid_from"], name="personal_discount_idx")]

    def __str__(self) -> str:
        return f"{self.customer}: {self.percent} %"
