"""A customer's current discount: the best of the cumulative tier and their personal discounts.

Read at checkout by every channel, so it is computed from the purchases table itself (not from
the figures the statuses engine refreshes later): a purchase recorded by any channel counts
towards the cumulative discount everywhere at once.

- The lifetime total is the sum of the customer's completed purchases (`total`: after discount,
  bonuses included) dated up to the day asked about; cancelled and returned ones do not count.
- The cumulative discount is the best active tier whose threshold the lifetime total reached
  (exactly at the threshold counts).
- Personal discounts count on the days from `valid_from` to `valid_until`, both inclusive (no
  end: open-ended).
- The higher percent wins. On equal percents a personal discount wins over the cumulative one
  (it was granted on purpose and its label says so); among equal personal discounts the one
  valid longest, then the oldest; among equal tiers the higher threshold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext

from customers.models import Purchase

from .config_cache import loyalty_config
from .models import CumulativeDiscountTier, PersonalDiscount

ZERO = Decimal("0.00")
CUMULATIVE = "cumulative"
PERSONAL = "personal"


@dataclass(frozen=True)
class NextTier:
    """The cumulative tier that would raise the customer's discount, and how far away it is."""

    tier_id: int
    threshold: Decimal
    percent: Decimal
    amount_left: Decimal

    def as_dict(self) -> dict:
        return {
            "tier_id": self.tier_id,
            "threshold": str(self.threshold),
            "percent": str(self.percent),
            "amount_left": str(self.amount_left),
        }


@dataclass(frozen=True)
class AppliedDiscount:
    """The discount that applies: `source_id` is the tier's id (cumulative) or the personal
    discount's. `lifetime_total` and `next_tier` are given whatever the source: the next tier is
    the first one above the lifetime total that would give more than `percent`."""

    percent: Decimal
    source: Literal["cumulative", "personal"]
    label: str
    source_id: int
    lifetime_total: Decimal
    next_tier: NextTier | None
    valid_until: dt.date | None = None  # personal discounts with an end date

    def as_dict(self) -> dict:
        return {
            "percent": str(self.percent),
            "source": self.source,
            "label": self.label,
            "source_id": self.source_id,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "lifetime_total": str(self.lifetime_total),
            "next_tier": self.next_tier.as_dict() if self.next_tier else None,
        }


@dataclass(frozen=True)
class DiscountOutlook:
    """What `customer_discount` decides from, for pages that show progress without a discount
    ("spend 1,200 ₽ more for 3 %" to a customer who has none yet)."""

    applied: AppliedDiscount | None
    lifetime_total: Decimal
    next_tier: NextTier | None


def lifetime_total(customer_id: int, on: dt.date | None = None) -> Decimal:
    """The sum of the customer's completed purchases dated up to `on` (default today)."""
    day = on or timezone.localdate()
    total = (
        Purchase.objects.filter(
            customer_id=customer_id,
            status=Purchase.Status.COMPLETED,
            purchase_date__lte=day,
        )
        .order_by()
        .aggregate(total=Sum("total"))["total"]
    )
    return (total or ZERO).quantize(Decimal("0.01"))


def customer_discount(customer_id: int, on: dt.date | None = None) -> AppliedDiscount | None:
    """The best discount customer `customer_id` has on day `on` (default today in the chain's
    time zone), or None when neither a tier nor a personal discount applies."""
    return discount_outlook(customer_id, on).applied


@dataclass(frozen=True)
class PersonalOffer:
    """A personal discount valid on the day asked about, as the outlook weighs it."""

    pk: int
    percent: Decimal
    valid_until: dt.date | None
    name: str  # its discount type's


def discount_outlook(customer_id: int, on: dt.date | None = None) -> DiscountOutlook:
    """The applicable discount with the lifetime total and the next tier that would raise it
    (two queries: the lifetime total and the valid personal discounts; the tiers are the
    process's copy of the configuration)."""
    day = on or timezone.localdate()
    return outlook_from(lifetime_total(customer_id, day), personal_offers(customer_id, day))


def personal_offers(customer_id: int, day: dt.date) -> list[PersonalOffer]:
    """The customer's personal discounts valid on `day`."""
    return [
        PersonalOffer(*row)
        for row in PersonalDiscount.objects.filter(customer_id=customer_id, valid_from__lte=day)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=day))
        .values_list("pk", "percent", "valid_until", "discount_type__name")
    ]


def outlook_from(total: Decimal, personal: Iterable[PersonalOffer]) -> DiscountOutlook:
    """`discount_outlook` from what the caller read: the lifetime total and the personal
    discounts valid on the day."""
    tiers = loyalty_config().tiers
    best_tier = max(
        (tier for tier in tiers if tier.threshold <= total),
        key=lambda tier: (tier.percent, tier.threshold),
        default=None,
    )
    best_personal = max(
        personal,
        key=lambda d: (d.percent, d.valid_until or dt.date.max, -d.pk),
        default=None,
    )
    current = max(
        (best_tier.percent if best_tier else ZERO),
        (best_personal.percent if best_personal else ZERO),
    )
    next_tier = next(
        (
            NextTier(
                tier_id=tier.pk,
                threshold=tier.threshold,
                percent=tier.percent,
                amount_left=tier.threshold - total,
            )
            for tier in tiers
            if tier.threshold > total and tier.percent > current
        ),
        None,
    )

    applied = None
    # Equal percents: the personal discount (see the module's docstring).
    if best_personal is not None and best_personal.percent == current:
        applied = AppliedDiscount(
            percent=best_personal.percent,
            source=PERSONAL,
            label=_personal_label(best_personal),
            source_id=best_personal.pk,
            lifetime_total=total,
            next_tier=next_tier,
            valid_until=best_personal.valid_until,
        )
    elif best_tier is not None:
        applied = AppliedDiscount(
            percent=best_tier.percent,
            source=CUMULATIVE,
            label=_tier_label(best_tier),
            source_id=best_tier.pk,
            lifetime_total=total,
            next_tier=next_tier,
        )
    return DiscountOutlook(applied=applied, lifetime_total=total, next_tier=next_tier)


def percent_text(percent: Decimal) -> str:
    """5.00 -> "5", 2.50 -> "2.5" (in the active language's notation)."""
    integral = percent == percent.to_integral_value()
    return number_format(percent.quantize(Decimal(1)) if integral else percent.normalize())


def money_text(amount: Decimal) -> str:
    value = amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount
    return f"{number_format(value, force_grouping=True)} ₽"


def _tier_label(tier: CumulativeDiscountTier) -> str:
    return gettext("Cumulative discount %(percent)s %% (purchases from %(threshold)s)") % {
        "percent": percent_text(tier.percent),
        "threshold": money_text(tier.threshold),
    }


def _personal_label(discount: PersonalOffer) -> str:
    values = {"name": discount.name, "percent": percent_text(discount.percent)}
    if discount.valid_until is None:
        return gettext("%(name)s %(percent)s %%") % values
    values["until"] = date_format(discount.valid_until, "SHORT_DATE_FORMAT")
    return gettext("%(name)s %(percent)s %% until %(until)s") % values
