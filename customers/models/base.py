"""Shared choices and the reference-list base."""

from django.db import models
from django.utils.translation import gettext_lazy as _

MONEY = {"max_digits": 12, "decimal_places": 2}


class Source(models.TextChoices):
    """Where a record or a field value came from."""

    POS = "pos", _("Pharmacy till (POS)")
    APP = "app", _("Mobile app")
    SITE = "site", _("Website")
    CONTACT_CENTRE = "contact_centre", _("Contact centre")
    ADMIN = "admin", _("CRM user")


class Sex(models.TextChoices):
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")


class Channel(models.TextChoices):
    """What a customer can consent to: message channels, calls and processing of personal data."""

    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    VIBER = "viber", _("Viber")
    VK = "vk", _("VK")
    CALLS = "calls", _("Calls")
    PERSONAL_DATA = "personal_data", _("Personal data processing")


class ReferenceList(models.Model):
    """A marketer-editable list of codes (purchase types, event types, bonus types, ...)."""

    reference_list = True  # gathered under "Reference lists" in the admin

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PurchaseType(ReferenceList):
    class Meta(ReferenceList.Meta):
        verbose_name = _("purchase type")
        verbose_name_plural = _("purchase types")
