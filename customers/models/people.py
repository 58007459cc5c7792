"""People: customers, their families, ids in other systems, consents."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .base import Channel, Sex, Source

# The personal fields of a customer card (everything but identifiers and bookkeeping): the
# fields identity resolution fills and merges by source precedence.
PERSONAL_FIELDS = (
    "last_name",
    "first_name",
    "middle_name",
    "birth_date",
    "sex",
    "city",
    "street",
    "house",
    "flat",
    "household_size",
)
# Identifier kind -> Customer column, strongest first (card, then phone, then email).
IDENTIFIER_COLUMNS = {"card": "card_number", "phone": "phone", "email": "email"}


class Customer(models.Model):
    phone = models.CharField(
        _("phone"),
        max_length=16,
        unique=True,
        null=True,
        blank=True,
        help_text=_("E.164, e.g. +79123456789. A phone a family shares belongs to one of them."),
    )
    email = models.EmailField(_("email"), max_length=254, null=True, blank=True)
    card_number = models.CharField(
        _("loyalty card number"), max_length=13, unique=True, null=True, blank=True
    )
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    middle_name = models.CharField(_("middle name"), max_length=100, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    street = models.CharField(_("street"), max_length=200, blank=True)
    house = models.CharField(_("house"), max_length=20, blank=True)
    flat = models.CharField(_("flat"), max_length=20, blank=True)
    household_size = models.PositiveSmallIntegerField(
        _("household size"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    source = models.CharField(
        _("first came from"), max_length=20, choices=Source.choices, default=Source.ADMIN
    )
    do_not_merge = models.BooleanField(
        _("do not merge"),
        default=False,
        db_default=False,
        help_text=_("Never merge this customer automatically (e.g. a family sharing a phone)."),
    )
    # Where each personal field's value came from and when: {"first_name": ["app", "<iso time>"]}.
    # Till data never overwrites what the customer gave through the app or site; an admin
    # edit beats both (customers.identity).
    field_sources = models.JSONField(
        _("field sources"), default=dict, db_default=models.Value("{}"), blank=True
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="customer_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(card_number__isnull=True)
                | models.Q(card_number__regex=r"^[0-9]{13}$"),
                name="customer_card_13_digits",
            ),
            models.CheckConstraint(
                condition=models.Q(phone__isnull=True) | models.Q(phone__startswith="+"),
                name="customer_phone_e164",
            ),
        ]
        indexes = [
            models.Index(fields=["last_name", "first_name"], name="customer_name_idx"),
            models.Index(fields=["city"], name="customer_city_idx"),
        ]
        # Merging deletes one record and rewrites the other: a right of its own, not "change".
        permissions = [("merge_customer", _("Can merge customers"))]

    def __str__(self) -> str:
        name = self.full_name
        if name:
            return name
        return (
            self.phone or self.card_number or self.email or _("Customer #%(id)s") % {"id": self.pk}
        )

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name, self.middle_name) if p)

    @property
    def age(self) -> int | None:
        from django.utils import timezone

        if not self.birth_date:
            return None
        today = timezone.localdate()
        born = self.birth_date
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


class FamilyMember(models.Model):
    """A relative without identifiers of their own: for targeting relatives and seasonal demand."""

    class Relation(models.TextChoices):
        SPOUSE = "spouse", _("Spouse")
        CHILD = "child", _("Child")
        PARENT = "parent", _("Parent")
        GRANDCHILD = "grandchild", _("Grandchild")
        GRANDPARENT = "grandparent", _("Grandparent")
        SIBLING = "sibling", _("Brother or sister")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="family_members",
        verbose_name=_("customer"),
    )
    name = models.CharField(pgettext_lazy("person", "name"), max_length=200)
    relation = models.CharField(_("relation"), max_length=20, choices=Relation.choices)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, blank=True)

    class Meta:
        verbose_name = _("family member")
        verbose_name_plural = _("family members")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_relation_display()})"


class ExternalId(models.Model):
    """The customer's id in another system (the app, the website, the POS)."""

    class System(models.TextChoices):
        POS = "pos", _("Pharmacy till (POS)")
        APP = "app", _("Mobile app")
        SITE = "site", _("Website")
        CONTACT_CENTRE = "contact_centre", _("Contact centre")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="external_ids", verbose_name=_("customer")
    )
    system = models.CharField(_("system"), max_length=20, choices=System.choices)
    external_id = models.CharField(_("external id"), max_length=100)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("external id")
        verbose_name_plural = _("external ids")
        constraints = [
            models.UniqueConstraint(fields=["system", "external_id"], name="external_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.system}:{self.external_id}"


class Consent(models.Model):
    """One grant or withdrawal of consent. Append-only: the current state is the latest row."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="consents", verbose_name=_("customer")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    occurred_at = models.DateTimeField(_("when given or withdrawn"))
    recorded_at = models.DateTimeField(_("recorded"), auto_now_add=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(
                fields=["customer", "channel", "-occurred_at", "-id"], name="consent_latest_idx"
            ),
        ]

    def __str__(self) -> str:
        verb = _("granted") if self.granted else _("withdrawn")
        return f"{self.get_channel_display()}: {verb}"
