"""A customer's status on a purchase's date, counting that purchase and the earlier ones.

This is the status a purchase accrues bonuses at (``../shared/PRODUCT.md``; the bonuses issue).
It does not depend on when the nightly run last ran, and a first purchase is a newcomer's.

On a purchase day some rule always holds when "regular" is on (regular itself: the customer
bought today), so the status on that day follows from the rules alone: the first purchase F and
the calendar months with a purchase among the N before the day's month (VIP, growing) — what
`status_rules.status_rules_on_day` takes, and what one aggregate row per customer gives.
With "regular" off, the status may carry over from earlier days: the whole history is replayed
(`status_rules.status_on`).

The purchases being accrued must already be written: they count themselves.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection

from customers.models import Purchase

from . import status_rules
from .config_cache import loyalty_config
from .status_rules import DayCutoffs, Thresholds, add_months, month_index


@dataclass(slots=True)
class History:
    first: dt.date
    months: set[int] = field(default_factory=set)  # month_index of months with a purchase
    days: list[int] | None = None  # every purchase day (ordinals), when the rules need them


class StatusOnPurchase:
    """The status of each of many customers on their purchases' days, read set-based."""

    def __init__(self, customer_ids: Iterable[int], days: Iterable[dt.date], th=None) -> None:
        self.th: Thresholds = th or loyalty_config().thresholds
        ids = list(set(customer_ids))
        days = list(days)
        self.cutoffs: dict[dt.date, DayCutoffs] = {}
        self.history: dict[int, History] = {}
        if not ids or not days:
            return
        until = max(days)
        if self.th.regular_enabled:
            window = max(self.th.vip_months, self.th.growing_months)
            since = add_months(min(days), -window).replace(day=1)
            self.history = _months(ids, since, until)
        else:
            self.history = _days(ids, until)

    def status(self, customer_id: int, day: dt.date) -> str:
        history = self.history.get(customer_id)
        if history is None:
            return status_rules.NEWCOMER  # nothing completed up to the day: the first purchase
        th = self.th
        if history.days is not None:
            return _replayed(history.days, day, th)
        cut = self.cutoffs.get(day)
        if cut is None:
            cut = self.cutoffs[day] = DayCutoffs.for_day(day, th)
        return status_by_rules(history.first, history.months, day, th, cut)


def status_by_rules(
    first: dt.date, months: Iterable[int], day: dt.date, th: Thresholds, cut: DayCutoffs
) -> str:
    """The status on purchase day `day` of a customer whose first completed purchase is `first`
    and who bought in `months` (month indexes; those not before the day's month are ignored).
    Needs "regular" on: then a rule holds on every purchase day."""
    bits = 0
    for month in months:
        back = cut.month - month - 1  # bit i: the (i+1)-th month before the day's month
        if 0 <= back < 63:
            bits |= 1 << back
    status = status_rules.status_rules_on_day(
        first=min(first, day), last=day, month_bits=bits, cut=cut, th=th
    )
    return status or status_rules.NEWCOMER


def _months(ids: list[int], since: dt.date, until: dt.date) -> dict[int, History]:
    """First completed purchase and months with one since `since`, one row per customer."""
    found: dict[int, History] = {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT customer_id, min(purchase_date), array_agg(DISTINCT "
                "(extract(year FROM purchase_date) * 12 + extract(month FROM purchase_date) "
                "- 1)::int) FILTER (WHERE purchase_date >= %s) "
                "FROM customers_purchase WHERE customer_id = ANY(%s) AND status = %s "
                "AND purchase_date <= %s GROUP BY customer_id",
                [since, ids, Purchase.Status.COMPLETED, until],
            )
            for customer_id, first, months in cursor.fetchall():
                found[customer_id] = History(first, set(months or ()))
        return found
    for customer_id, day in _completed_days(ids, until):
        history = found.get(customer_id)
        if history is None:
            history = found[customer_id] = History(day)
        elif day < history.first:
            history.first = day
        if day >= since:
            history.months.add(month_index(day))
    return found


def _days(ids: list[int], until: dt.date) -> dict[int, History]:
    days: dict[int, set[int]] = defaultdict(set)
    for customer_id, day in _completed_days(ids, until):
        days[customer_id].add(day.toordinal())
    return {
        c: History(dt.date.fromordinal(min(found)), days=sorted(found)) for c, found in days.items()
    }


def _completed_days(ids: list[int], until: dt.date):
    """(customer id, purchase date) of the customers' completed purchases up to `until`."""
    return (
        Purchase.objects.filter(
            customer_id__in=ids, status=Purchase.Status.COMPLETED, purchase_date__lte=until
        )
        .values_list("customer_id", "purchase_date")
        .order_by()
    )


def _replayed(days: list[int], day: dt.date, th: Thresholds) -> str:
    ordinal = day.toordinal()
    history = [d for d in days if d <= ordinal]
    if not history or history[-1] != ordinal:
        history.append(ordinal)
    return status_rules.status_on(history, th, ordinal) or status_rules.NEWCOMER


def status_at_purchase(customer_id: int, day: dt.date) -> str:
    """The status customer `customer_id` buys at on `day` (one customer: a quote, an order)."""
    return StatusOnPurchase([customer_id], [day]).status(customer_id, day)


def months_window_start(day: dt.date, th: Thresholds) -> dt.date:
    """The first day of the months `status_from_months` needs before purchase day `day`."""
    return add_months(day, -max(th.vip_months, th.growing_months)).replace(day=1)


def status_from_months(
    first: dt.date | None, months: Iterable[int], day: dt.date, th: Thresholds
) -> str:
    """The status on purchase day `day` of a customer whose first completed purchase up to the
    day is `first` (None: none) and who bought in `months` (month indexes since
    `months_window_start`): what `status_at_purchase` gives, from an aggregate the caller read
    with other things. Needs "regular" on (`th.regular_enabled`)."""
    if first is None:
        return status_rules.NEWCOMER
    return status_by_rules(first, months, day, th, DayCutoffs.for_day(day, th))
