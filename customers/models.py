"""The unified customer base: one record per person, whatever channel they came through."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
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
    name = models.CharField(_("name"), max_length=200)
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


class Purchase(models.Model):
    """A purchase from any channel: a till sale, an app or website order."""

    class Status(models.TextChoices):
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        RETURNED = "returned", _("Returned")

    source = models.CharField(_("source system"), max_length=20, choices=Source.choices)
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="purchases",
        verbose_name=_("store"),
    )
    external_id = models.CharField(_("id in the source system"), max_length=64)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="purchases",
        verbose_name=_("customer"),
    )
    purchased_at = models.DateTimeField(_("date and time"))
    purchase_date = models.DateField(
        _("purchase date"), help_text=_("Local date in the chain's time zone.")
    )
    purchase_type = models.ForeignKey(
        PurchaseType, on_delete=models.PROTECT, related_name="+", verbose_name=_("purchase type")
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.COMPLETED
    )
    total = models.DecimalField(
        _("total"), **MONEY, help_text=_("After discount, bonuses included.")
    )
    discount = models.DecimalField(_("discount"), **MONEY, default=Decimal("0.00"))
    bonus_spent = models.DecimalField(_("bonuses spent"), **MONEY, default=Decimal("0.00"))
    order_ref = models.CharField(_("app or website order"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        ordering = ["-purchased_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "store", "external_id"],
                condition=models.Q(store__isnull=False),
                name="purchase_unique_per_store",
            ),
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=models.Q(store__isnull=True),
                name="purchase_unique_without_store",
            ),
            models.CheckConstraint(condition=models.Q(total__gte=0), name="purchase_total_gte_0"),
            models.CheckConstraint(
                condition=models.Q(discount__gte=0), name="purchase_discount_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(bonus_spent__gte=0), name="purchase_bonus_spent_gte_0"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "purchase_date"], name="purchase_customer_date_idx"),
            models.Index(fields=["store", "purchase_date"], name="purchase_store_date_idx"),
            models.Index(fields=["purchase_date"], name="purchase_date_idx"),
        ]

    def __str__(self) -> str:
        return _("Purchase %(id)s of %(date)s") % {
            "id": self.external_id,
            "date": self.purchase_date,
        }


class PurchaseLine(models.Model):
    purchase = models.ForeignKey(
        Purchase, on_delete=models.CASCADE, related_name="lines", verbose_name=_("purchase")
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    qty = models.DecimalField(
        _("quantity"),
        max_digits=10,
        decimal_places=3,
        validators=[MinValueValidator(Decimal("0.001"))],
    )
    price = models.DecimalField(_("price"), **MONEY)
    amount = models.DecimalField(_("amount"), **MONEY, help_text=_("qty × price, rounded half-up."))

    class Meta:
        verbose_name = _("purchase line")
        verbose_name_plural = _("purchase lines")
        constraints = [
            models.CheckConstraint(condition=models.Q(qty__gt=0), name="purchase_line_qty_gt_0"),
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="purchase_line_price_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} × {self.qty}"


class Reservation(models.Model):
    """A product reserved on the website for pick-up in a store."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PICKED_UP = "picked_up", _("Picked up")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="reservations", verbose_name=_("customer")
    )
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="reservations", verbose_name=_("store")
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    quantity = models.DecimalField(
        _("quantity"),
        max_digits=10,
        decimal_places=3,
        validators=[MinValueValidator(Decimal("0.001"))],
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE
    )
    source = models.CharField(
        _("source"), max_length=20, choices=Source.choices, default=Source.SITE
    )
    external_id = models.CharField(_("id in the source system"), max_length=64, blank=True)
    pickup_deadline = models.DateTimeField(_("pick up before"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="reservation_qty_gt_0"),
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~models.Q(external_id=""),
                name="reservation_external_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return _("Reservation of %(product)s") % {"product": self.product}
