"""The bonus arithmetic: what a purchase earns and how much of it bonuses may pay.

Pure functions over a `BonusPolicy` snapshot of the rules, so the checkout quote, the API orders
and the POS import (which loads the policy once per file) compute every amount the same way.

- Eligible lines: products not excluded from bonuses (prescription-only ones by default).
- The purchase discount is spread over the lines in proportion to their amounts; the eligible
  amount is the eligible lines' sum minus their share of it.
- Bonuses may pay at most `max_redeem_share` % of the eligible amount.
- The accrual base is the eligible amount minus the bonuses spent; the accrual is the status
  percent of it (or the purchase type's override).
- Every amount rounds half-up to kopecks; 1 bonus = 1 rouble.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils.translation import gettext as _

from pharmacrm.validation import field_error

from . import status_rules

KOPECK = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
MAX_AMOUNT = Decimal("999999999999.99")


def round_money(value: Decimal) -> Decimal:
    return value.quantize(KOPECK, rounding=ROUND_HALF_UP)


def parse_amount(value, field: str, *, allow_zero: bool = False) -> Decimal:
    """A money or bonus amount from user input: a decimal with at most two places, positive
    (or zero when allowed). Anything else raises ValidationError naming `field`."""
    if isinstance(value, float | bool):
        raise field_error(field, _('Give the amount as a decimal string, e.g. "12.50".'), "invalid")
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise field_error(field, _("Not a number."), "invalid") from None
    if not amount.is_finite():
        raise field_error(field, _("Not a number."), "invalid")
    if abs(amount) > MAX_AMOUNT:
        raise field_error(field, _("Too large."), "max_value")
    if amount != amount.quantize(KOPECK):
        raise field_error(field, _("At most two decimal places."), "precision")
    if amount < 0 or (amount == 0 and not allow_zero):
        message = _("Must not be negative.") if allow_zero else _("Must be greater than zero.")
        raise field_error(field, message, "min_value")
    return amount.quantize(KOPECK)


@dataclass(frozen=True)
class BonusPolicy:
    """A snapshot of the bonus rules."""

    status_percent: dict[str, Decimal]
    type_percent: dict[tuple[int, str], Decimal]  # (purchase type id, status or "") -> percent
    excluded_products: frozenset[int]
    max_redeem_share: Decimal
    activation_days: int
    expiry_days: int
    welcome_amount: Decimal
    birthday_amount: Decimal

    @classmethod
    def load(
        cls,
        products: Iterable[int] | None = None,
        *,
        prescription_only: Iterable[int] | None = None,
    ) -> BonusPolicy:
        """The rules now (the process's copy of the configuration, see `config_cache`).
        `products`: only these products' exclusions are worked out (a checkout's basket), not
        the whole catalogue's (a batch of purchases); `prescription_only`: which of them are
        prescription-only, when the caller has read it already (else it is read here)."""
        from customers.models import Product

        from .config_cache import loyalty_config

        config = loyalty_config()
        rules = config.rules
        excluded = set()
        if products is not None:
            products = set(products)
        if rules.exclude_prescription_only:
            if prescription_only is None:
                rx = Product.objects.filter(prescription_only=True).order_by()
                if products is not None:
                    rx = rx.filter(pk__in=products)
                prescription_only = rx.values_list("pk", flat=True)
            excluded.update(prescription_only)
        if products is None:
            product_rules = config.product_rules.items()
        else:
            product_rules = (
                (pk, config.product_rules[pk]) for pk in products if pk in config.product_rules
            )
        for product_id, is_excluded in product_rules:
            if is_excluded:
                excluded.add(product_id)
            else:
                excluded.discard(product_id)
        return cls(
            status_percent={
                status: rules.status_percent(status)
                for status in (
                    status_rules.NEWCOMER,
                    status_rules.ONE_TIME,
                    status_rules.GROWING,
                    status_rules.REGULAR,
                    status_rules.LOST,
                    status_rules.VIP,
                )
            },
            type_percent=config.type_percent,
            excluded_products=frozenset(excluded),
            max_redeem_share=rules.max_redeem_share,
            activation_days=rules.activation_days,
            expiry_days=rules.expiry_days,
            welcome_amount=rules.welcome_amount,
            birthday_amount=rules.birthday_amount,
        )

    def percent(self, status: str | None, purchase_type_id: int | None = None) -> Decimal:
        """The accrual percent for a customer status (a first purchase: newcomer's)."""
        status = status or status_rules.NEWCOMER
        if purchase_type_id is not None:
            for key in ((purchase_type_id, status), (purchase_type_id, "")):
                if key in self.type_percent:
                    return self.type_percent[key]
        return self.status_percent.get(status, self.status_percent[status_rules.NEWCOMER])

    def eligible_amount(self, lines: Iterable[tuple[int, Decimal]], discount: Decimal) -> Decimal:
        """The eligible lines' sum minus their share of the purchase discount.

        `lines` are (product id, line amount)."""
        total = eligible = ZERO
        for product_id, amount in lines:
            total += amount
            if product_id not in self.excluded_products:
                eligible += amount
        if not eligible or not discount:
            return eligible
        if eligible == total:
            return max(eligible - discount, ZERO)
        return max(eligible - round_money(discount * eligible / total), ZERO)

    def max_spend(self, eligible: Decimal) -> Decimal:
        """The most bonuses that may pay for a purchase with this eligible amount."""
        return round_money(eligible * self.max_redeem_share / HUNDRED)

    @staticmethod
    def accrual(eligible: Decimal, spent: Decimal, percent: Decimal) -> Decimal:
        """What a purchase earns: `percent` of the eligible amount not paid with bonuses."""
        base = max(eligible - spent, ZERO)
        return round_money(base * percent / HUNDRED)

    def lot_dates(
        self, posted: dt.datetime, *, wait: bool = True
    ) -> tuple[dt.datetime, dt.datetime]:
        """(available_at, expires_at) of a credit posted at `posted`.

        Accruals (`wait`) wait `activation_days` whole days (available from the start of that
        local day); every credit stays valid `expiry_days` days after it is available and
        expires at the start of the next local day, when the nightly job runs."""
        from django.utils import timezone

        local = timezone.localtime(posted)
        if wait and self.activation_days:
            available = _day_start(local.date() + dt.timedelta(days=self.activation_days))
        else:
            available = posted
        start = timezone.localtime(available).date()
        expires = _day_start(start + dt.timedelta(days=self.expiry_days + 1))
        return available, expires


def _day_start(day: dt.date) -> dt.datetime:
    from django.utils import timezone

    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
