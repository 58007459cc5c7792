from django.db import models
from django.utils.translation import gettext_lazy as _

from customers.models import ReferenceList


class BonusDiscountType(ReferenceList):
    """Kinds of bonus movements and discounts (welcome, birthday, personal discount, ...)."""

    class Kind(models.TextChoices):
        BONUS = "bonus", _("Bonus")
        DISCOUNT = "discount", _("Discount")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)

    class Meta(ReferenceList.Meta):
        verbose_name = _("bonus or discount type")
        verbose_name_plural = _("bonus and discount types")
