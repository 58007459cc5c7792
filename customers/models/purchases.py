"""Purchases from every channel and website reservations."""

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .base import MONEY, PurchaseType, Source
from .catalogue import Product, Store
from .people import Customer

# The channels whose purchases are orders numbered by their channel (unique per channel): the
# POS's are till sales, unique per store.
ORDER_SOURCES = (Source.APP, Source.SITE, Source.CONTACT_CENTRE)


class Purchase(models.Model):
    """A purchase from any channel: a till sale, an app or website order.

    An app or website order is placed (awaiting pick-up or delivery; it holds the bonuses it
    spends and counts for nothing else), then completed — through the API, or by the till sale
    whose `order_ref` names it — or cancelled. Only completed purchases count for figures,
    statuses, discounts and accruals.
    """

    class Status(models.TextChoices):
        PLACED = "placed", _("Placed, awaiting pick-up or delivery")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        RETURNED = "returned", _("Returned")

    class Fulfilment(models.TextChoices):
        # A context: "Delivery" alone is the ledger admin's (a delivery of a movement).
        PICKUP = "pickup", pgettext_lazy("order fulfilment", "Pick-up in a store")
        DELIVERY = "delivery", pgettext_lazy("order fulfilment", "Delivery")

    source = models.CharField(_("source system"), max_length=20, choices=Source.choices)
    # No single-column indexes on store and customer: (store, date) and (customer, date) below
    # serve every lookup by either, and each index on this ten-million-row table slows imports.
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        db_index=False,
        null=True,
        blank=True,
        related_name="purchases",
        verbose_name=_("store"),
    )
    external_id = models.CharField(_("id in the source system"), max_length=64)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        db_index=False,
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
    # Orders only (empty for till sales); db_default: the POS import's COPY leaves them out.
    fulfilment = models.CharField(
        _("fulfilment"),
        max_length=10,
        choices=Fulfilment.choices,
        blank=True,
        default="",
        db_default="",
    )
    till_purchase_id = models.CharField(
        _("till sale"),
        max_length=64,
        blank=True,
        default="",
        db_default="",
        help_text=_(
            "The purchase id, in its store's POS export, of the till sale that completed this "
            "order: a re-export of that sale updates the order."
        ),
    )
    # Digest of the purchase as last imported (fields, customer identifiers, lines): a re-exported
    # purchase with the same digest is unchanged and skipped without touching anything.
    import_digest = models.CharField(
        _("import digest"), max_length=32, blank=True, default="", db_default="", editable=False
    )
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
            # An order number is its channel's, whatever store the order is picked up in; the
            # index also finds the order a till sale's order_ref names. The condition is spelt
            # as ORs: PostgreSQL prints an IN list back in a form that does not read back the
            # same, and the demo loader rebuilds indexes from what it prints.
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=models.Q(source=Source.APP)
                | models.Q(source=Source.SITE)
                | models.Q(source=Source.CONTACT_CENTRE),
                name="purchase_order_number_unique",
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
            # Covering the status: a customer's completed purchase days (status on a date, the
            # POS import's accrual percent, figures) are read from the index alone.
            models.Index(
                fields=["customer", "purchase_date"],
                include=["status"],
                name="purchase_customer_date_st_idx",
            ),
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
