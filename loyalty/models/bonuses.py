"""The bonus ledger: rules, one account per customer, movements and what each debit consumed.

Invariants (``manage.py check_bonus_ledger`` verifies them all):

- a movement's amount is signed (credits > 0, debits < 0) and never changes; its idempotency key
  is unique, so a replayed delivery inserts nothing;
- a credit's ``remaining`` is its amount minus what debits consumed from it; a debit's
  ``uncovered`` is what no credit covered yet (debt: only reversals and adjustments can leave it);
- the account caches ``balance`` (available: activated, unexpired, unconsumed credits),
  ``pending`` (credits not yet activated) and ``debt`` (uncovered debits), changed in the same
  transaction as the rows they follow from; ``balance + pending - debt`` = the sum of amounts.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from customers.models import Customer, Product, Purchase, PurchaseType

from .statuses import CustomerStatus

BONUS = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")


def _percent(verbose_name, default: str):
    return models.DecimalField(
        verbose_name,
        max_digits=5,
        decimal_places=2,
        default=Decimal(default),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )


class BonusRules(models.Model):
    """The chain's bonus rules: one row (pk=1), edited by marketers in the admin."""

    accrual_newcomer = _percent(_("accrual for newcomers, %"), "3")
    accrual_one_time = _percent(_("accrual for one-time customers, %"), "3")
    accrual_growing = _percent(_("accrual for growing customers, %"), "5")
    accrual_regular = _percent(_("accrual for regular customers, %"), "4")
    accrual_lost = _percent(_("accrual for lost customers, %"), "3")
    accrual_vip = _percent(_("accrual for VIP customers, %"), "7")
    max_redeem_share = _percent(_("maximum share of a purchase paid with bonuses, %"), "30")
    exclude_prescription_only = models.BooleanField(
        _("exclude prescription-only medicines"),
        default=True,
        help_text=_("Prescription-only products neither earn bonuses nor can be paid with them."),
    )
    activation_days = models.PositiveSmallIntegerField(
        _("days before accrued bonuses can be spent"),
        default=0,
        validators=[MaxValueValidator(365)],
    )
    expiry_days = models.PositiveSmallIntegerField(
        _("days bonuses stay valid"),
        default=365,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
    )
    welcome_amount = models.DecimalField(
        _("welcome bonus"),
        **BONUS,
        default=Decimal("100.00"),
        validators=[MinValueValidator(ZERO)],
    )
    birthday_amount = models.DecimalField(
        _("birthday bonus"),
        **BONUS,
        default=Decimal("200.00"),
        validators=[MinValueValidator(ZERO)],
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("updated by"),
    )

    class Meta:
        verbose_name = _("bonus rules")
        verbose_name_plural = _("bonus rules")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expiry_days__gt=models.F("activation_days")),
                name="bonus_rules_expiry_after_activation",
            ),
        ]

    def __str__(self) -> str:
        return str(_("Bonus rules"))

    def status_percent(self, status: str) -> Decimal:
        return getattr(self, f"accrual_{status}", self.accrual_newcomer)


class AccrualRate(models.Model):
    """An accrual percent for one purchase type (and optionally one status) that overrides the
    status percent of the rules."""

    purchase_type = models.ForeignKey(
        PurchaseType, on_delete=models.CASCADE, related_name="+", verbose_name=_("purchase type")
    )
    status = models.CharField(
        _("customer status"),
        max_length=10,
        choices=CustomerStatus.choices,
        blank=True,
        help_text=_("Empty: every status."),
    )
    percent = _percent(_("accrual, %"), "0")

    class Meta:
        verbose_name = _("accrual rate by purchase type")
        verbose_name_plural = _("accrual rates by purchase type")
        constraints = [
            models.UniqueConstraint(
                fields=["purchase_type", "status"], name="accrual_rate_unique_type_status"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purchase_type} {self.get_status_display() or '*'}: {self.percent} %"


class BonusProductRule(models.Model):
    """A product excluded from bonuses, or a prescription-only one allowed after all."""

    product = models.OneToOneField(
        Product, on_delete=models.CASCADE, related_name="bonus_rule", verbose_name=_("product")
    )
    excluded = models.BooleanField(
        _("excluded from bonuses"),
        default=True,
        help_text=_("Unticked: the product earns and accepts bonuses even if prescription-only."),
    )
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("product bonus rule")
        verbose_name_plural = _("product bonus rules")

    def __str__(self) -> str:
        return str(self.product)


class BonusAccount(models.Model):
    customer = models.OneToOneField(
        Customer,
        on_delete=models.PROTECT,
        primary_key=True,
        related_name="bonus_account",
        verbose_name=_("customer"),
    )
    balance = models.DecimalField(
        _("available"), **BONUS, default=ZERO, help_text=_("Can be spent now.")
    )
    pending = models.DecimalField(
        _("pending"), **BONUS, default=ZERO, help_text=_("Accrued, not yet available.")
    )
    debt = models.DecimalField(
        _("debt"),
        **BONUS,
        default=ZERO,
        help_text=_("Taken back by returns after it was spent; paid off by later accruals."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("bonus account")
        verbose_name_plural = _("bonus accounts")
        permissions = [("adjust_bonusaccount", _("Can post manual bonus adjustments"))]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(balance__gte=0), name="bonus_account_balance_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(pending__gte=0), name="bonus_account_pending_gte_0"
            ),
            models.CheckConstraint(
                condition=models.Q(debt__gte=0), name="bonus_account_debt_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return str(self.customer)


class MovementKind(models.TextChoices):
    ACCRUAL = "accrual", _("Accrual on a purchase")
    REDEMPTION = "redemption", _("Redemption at checkout")
    ACCRUAL_REVERSAL = "accrual_reversal", _("Accrual reversed (cancel or return)")
    REDEMPTION_REVERSAL = "redemption_reversal", _("Redemption refunded (cancel or return)")
    EXPIRY = "expiry", _("Expiry")
    WELCOME = "welcome", _("Welcome bonus")
    BIRTHDAY = "birthday", _("Birthday bonus")
    CAMPAIGN = "campaign", _("Campaign bonus")
    ADJUSTMENT = "adjustment", _("Manual adjustment")


class BonusMovement(models.Model):
    """One ledger row. Amount, kind and key never change; `remaining` (credits) and `uncovered`
    (debits) are the bookkeeping of what was consumed, checked against BonusConsumption."""

    id = models.BigAutoField(primary_key=True)
    # In the database (PostgreSQL) this column references the customer's *account*
    # (migration 0010), which references the customer: every writer holds the account row
    # locked already, so the check costs no lock of its own, where a reference to the customer
    # would lock (and dirty) the customer row for each movement posted.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        db_index=False,
        db_constraint=False,
        related_name="bonus_movements",
        verbose_name=_("customer"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=MovementKind.choices)
    amount = models.DecimalField(_("amount"), **BONUS, help_text=_("Credit > 0, debit < 0."))
    # Unique through a constraint (below), not unique=True: that adds a second, pattern-ops
    # index nothing reads.
    idempotency_key = models.CharField(_("idempotency key"), max_length=120)
    purchase = models.ForeignKey(
        Purchase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,
        related_name="bonus_movements",
        verbose_name=_("purchase"),
    )
    campaign_ref = models.CharField(
        _("marketing activity"),
        max_length=64,
        blank=True,
        help_text=_("The activity a campaign bonus was granted by."),
    )
    created_at = models.DateTimeField(_("posted"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,  # partial index below: most movements are the system's
        related_name="+",
        verbose_name=_("posted by"),
    )
    channel = models.CharField(
        _("channel"), max_length=40, blank=True, help_text=_("POS, API client, admin or system.")
    )
    reason = models.TextField(_("reason"), blank=True)
    # Credits only.
    available_at = models.DateTimeField(_("available from"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    is_pending = models.BooleanField(_("pending"), default=False)
    remaining = models.DecimalField(_("unspent"), **BONUS, null=True, blank=True)
    # Debits only.
    uncovered = models.DecimalField(_("debt left"), **BONUS, null=True, blank=True)
    # Accruals only: the rule applied, kept so a later return takes back at the same rate.
    accrual_percent = models.DecimalField(
        _("accrual, %"), max_digits=5, decimal_places=2, null=True, blank=True
    )
    status = models.CharField(
        _("customer status"), max_length=10, choices=CustomerStatus.choices, blank=True
    )

    class Meta:
        verbose_name = _("bonus movement")
        verbose_name_plural = _("bonus movements")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="bonus_mv_key_unique"),
            models.CheckConstraint(
                condition=~models.Q(amount=0), name="bonus_movement_amount_not_0"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(
                        amount__gt=0,
                        remaining__gte=0,
                        remaining__lte=models.F("amount"),
                        uncovered__isnull=True,
                    )
                    | models.Q(
                        amount__lt=0,
                        remaining__isnull=True,
                        uncovered__gte=0,
                        uncovered__lte=-models.F("amount"),
                    )
                ),
                name="bonus_movement_remaining_or_uncovered",
            ),
            models.CheckConstraint(
                condition=models.Q(amount__lt=0)
                | models.Q(
                    available_at__isnull=False,
                    expires_at__isnull=False,
                    expires_at__gt=models.F("available_at"),
                ),
                name="bonus_movement_credit_dates",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "created_at"], name="bonus_mv_customer_idx"),
            models.Index(
                fields=["purchase"],
                condition=models.Q(purchase__isnull=False),
                name="bonus_mv_purchase_idx",
            ),
            # No index for open lots or expiry: a redemption reads its customer's few dozen
            # movements by the index above, the nightly expiry reads the table once, and each
            # index more slows every accrual the POS import posts.
            models.Index(
                fields=["available_at"],
                condition=models.Q(is_pending=True),
                name="bonus_mv_pending_idx",
            ),
            models.Index(
                fields=["customer", "created_at"],
                condition=models.Q(uncovered__gt=0),
                name="bonus_mv_debts_idx",
            ),
            models.Index(
                fields=["created_by"],
                condition=models.Q(created_by__isnull=False),
                name="bonus_mv_created_by_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount}"

    @property
    def is_credit(self) -> bool:
        return self.amount > 0


class BonusConsumption(models.Model):
    """`amount` of credit `credit` taken by debit `debit` (a redemption, expiry, reversal or a
    debt paid off by a later credit)."""

    id = models.BigAutoField(primary_key=True)
    debit = models.ForeignKey(
        BonusMovement, on_delete=models.PROTECT, related_name="consumed", verbose_name=_("debit")
    )
    credit = models.ForeignKey(
        BonusMovement,
        on_delete=models.PROTECT,
        related_name="consumed_by",
        verbose_name=_("credit"),
    )
    amount = models.DecimalField(_("amount"), **BONUS)
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("bonus consumption")
        verbose_name_plural = _("bonus consumptions")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="bonus_consumption_amount_gt_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.debit_id} ← {self.credit_id}: {self.amount}"
