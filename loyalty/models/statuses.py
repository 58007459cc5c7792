"""Customer figures, statuses and their history (../shared/PRODUCT.md, "Customer statuses")."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from customers.models import MONEY, Customer, Store

from .. import status_rules


class CustomerStatus(models.TextChoices):
    NEWCOMER = status_rules.NEWCOMER, _("Newcomer")
    ONE_TIME = status_rules.ONE_TIME, _("One-time")
    GROWING = status_rules.GROWING, _("Growing")
    REGULAR = status_rules.REGULAR, _("Regular")
    LOST = status_rules.LOST, _("Lost")
    VIP = status_rules.VIP, _("VIP")


def _months(verbose_name, default: int, help_text):
    return models.PositiveSmallIntegerField(
        verbose_name,
        default=default,
        validators=[MinValueValidator(1), MaxValueValidator(status_rules.MAX_MONTHS)],
        help_text=help_text,
    )


class StatusSettings(models.Model):
    """The status thresholds marketers edit (one row). Saving queues a full recomputation."""

    lost_months = _months(
        _("lost after (months)"), 12, _("Lost: the last purchase more than this many months ago.")
    )
    vip_months = _months(
        _("VIP: months in a row"),
        12,
        _("VIP: a purchase in each of this many calendar months before the day."),
    )
    growing_months = _months(
        _("growing: months in a row"),
        3,
        _("Growing: a purchase in each of this many calendar months before the day."),
    )
    newcomer_months = _months(
        _("newcomer for (months)"),
        1,
        _("Newcomer: the first purchase not more than this many months ago."),
    )
    one_time_min_months = _months(
        _("one-time: last purchase at least (months) ago"),
        3,
        _("One-time: the last purchase at least this many months ago ..."),
    )
    one_time_max_months = _months(
        _("one-time: first purchase at most (months) ago"),
        6,
        _("... and the first purchase not more than this many months ago."),
    )
    regular_enabled = models.BooleanField(
        _("“regular” status on"),
        default=True,
        help_text=_(
            "A customer who buys again after the newcomer period, less often than monthly, "
            "becomes regular. Off: the chain's original five statuses."
        ),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("status settings")
        verbose_name_plural = _("status settings")

    def __str__(self) -> str:
        return str(_("Status settings"))

    def thresholds(self) -> status_rules.Thresholds:
        return status_rules.Thresholds(
            lost_months=self.lost_months,
            vip_months=self.vip_months,
            growing_months=self.growing_months,
            newcomer_months=self.newcomer_months,
            one_time_min_months=self.one_time_min_months,
            one_time_max_months=self.one_time_max_months,
            regular_enabled=self.regular_enabled,
        )


class StatusRun(models.Model):
    """One recomputation: what it was, as of which date, what it wrote."""

    class Kind(models.TextChoices):
        NIGHTLY = "nightly", _("Nightly")
        FULL = "full", _("Full replay")
        INCREMENTAL = "incremental", _("Touched customers")

    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    as_of = models.DateField(_("as of"))
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    customers = models.PositiveIntegerField(_("customers computed"), default=0)
    figures_written = models.PositiveIntegerField(_("figure rows written"), default=0)
    changes_written = models.PositiveIntegerField(_("status changes written"), default=0)
    changes_superseded = models.PositiveIntegerField(_("status changes superseded"), default=0)
    thresholds = models.JSONField(_("thresholds"), default=dict)
    # Breakpoints of the R/F/M scores from a nightly or full run: incremental runs score touched
    # customers against them instead of re-ranking the whole base.
    rfm_breakpoints = models.JSONField(_("RFM breakpoints"), default=dict, blank=True)
    timings = models.JSONField(_("seconds per phase"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("status recomputation")
        verbose_name_plural = _("status recomputations")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return _("%(kind)s as of %(date)s") % {"kind": self.get_kind_display(), "date": self.as_of}


class CustomerFigures(models.Model):
    """A customer's figures, status and scores: read by lists, filters and reports without
    aggregating purchases again. A row exists for every customer with a completed purchase up to
    the date of the last whole-base run (`loyalty.selectors.figures_as_of`), which all rows hold
    for: a row is only written when something in it changed, so most nights touch few rows.

    No indexes beyond the key: rows are rewritten nightly (kept HOT, see the migration's
    fillfactor) and five-valued columns are no use to an index anyway."""

    customer = models.OneToOneField(
        Customer,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="figures",
        verbose_name=_("customer"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=CustomerStatus.choices, blank=True
    )
    status_since = models.DateField(_("status since"), null=True, blank=True)
    purchase_count = models.PositiveIntegerField(_("purchases"), default=0)
    lifetime_total = models.DecimalField(_("lifetime total"), max_digits=14, decimal_places=2)
    average_check = models.DecimalField(_("average check"), **MONEY)
    frequency = models.DecimalField(
        _("purchases per month"), max_digits=10, decimal_places=2, default=0
    )
    first_purchase = models.DateField(_("first purchase"), null=True, blank=True)
    last_purchase = models.DateField(_("last purchase"), null=True, blank=True)
    home_store = models.ForeignKey(
        Store,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        verbose_name=_("home store"),
    )
    purchases_12m = models.PositiveIntegerField(_("purchases in 12 months"), default=0)
    total_12m = models.DecimalField(_("total in 12 months"), max_digits=14, decimal_places=2)
    r_score = models.PositiveSmallIntegerField(_("R"), null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(_("F"), null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(_("M"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer figures")
        verbose_name_plural = _("customer figures")

    def __str__(self) -> str:
        return _("Figures of customer %(id)s") % {"id": self.customer_id}


class StatusChange(models.Model):
    """One change of a customer's status. Rows are never deleted: a recomputation that rewrites
    history marks the rows it replaces as superseded; reports read the rows in effect."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="status_changes",
        db_index=False,
        verbose_name=_("customer"),
    )
    old_status = models.CharField(
        _("old status"), max_length=10, choices=CustomerStatus.choices, blank=True
    )
    new_status = models.CharField(_("new status"), max_length=10, choices=CustomerStatus.choices)
    effective_date = models.DateField(_("took effect"))
    computed_at = models.DateTimeField(_("computed"))
    run = models.ForeignKey(
        StatusRun,
        on_delete=models.PROTECT,
        related_name="changes",
        db_index=False,
        verbose_name=_("computed by"),
    )
    superseded_at = models.DateTimeField(_("superseded"), null=True, blank=True)
    superseded_by = models.ForeignKey(
        StatusRun,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_changes",
        db_index=False,
        verbose_name=_("superseded by"),
    )

    class Meta:
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
        ordering = ["-effective_date", "-id"]
        indexes = [
            # A customer's history in date order; also what deleting or merging a customer
            # needs to find its rows (a partial index would leave them to a full scan).
            models.Index(fields=["customer", "effective_date"], name="status_change_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.old_status or '—'} → {self.new_status}"
