"""A naive, day-by-day reading of PRODUCT.md's customer-status rules: the yardstick for
loyalty.status_rules.

Written from the spec alone, deliberately slow and literal: walk every day from the first purchase
to T, evaluate the six rules in precedence order with ``dateutil.relativedelta`` month arithmetic,
and keep the last status any rule gave (the sticky rule). Nothing here is shared with the module
under test except the threshold field names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import cache

from dateutil.relativedelta import relativedelta

ONE_DAY = dt.timedelta(days=1)

YearMonth = tuple[int, int]
Change = tuple[dt.date, str | None, str]


@cache
def months_before(day: dt.date, months: int) -> dt.date:
    """`day` − `months` months, clamped to the end of the month (31 March − 1 month = 28 Feb)."""
    return day - relativedelta(months=months)


@cache
def calendar_month_before(day: dt.date, n: int) -> YearMonth:
    """The n-th whole calendar month before `day`'s month (n = 1: the previous month)."""
    start = day.replace(day=1) - relativedelta(months=n)
    return start.year, start.month


def bought_in_each_month_before(day: dt.date, n: int, months_bought: set[YearMonth]) -> bool:
    """A purchase in each of the `n` whole calendar months before `day`'s month."""
    return all(calendar_month_before(day, i) in months_bought for i in range(1, n + 1))


def rule_of_the_day(
    t: dt.date,
    *,
    first: dt.date,
    last: dt.date,
    months_bought: set[YearMonth],
    bought_today: bool,
    th,
) -> str | None:
    """The status the first holding rule gives on day `t`, or None when no rule holds.

    `first` / `last` are F and L over the purchases up to `t`; `months_bought` the calendar months
    of those purchases.
    """
    if last < months_before(t, th.lost_months):
        return "lost"
    if bought_in_each_month_before(t, th.vip_months, months_bought):
        return "vip"
    if bought_in_each_month_before(t, th.growing_months, months_bought):
        return "growing"
    if first >= months_before(t, th.newcomer_months):
        return "newcomer"
    if months_before(t, th.one_time_max_months) <= first and last <= months_before(
        t, th.one_time_min_months
    ):
        return "one_time"
    if th.regular_enabled and bought_today and first < months_before(t, th.newcomer_months):
        return "regular"
    return None


def oracle_changes(purchases: Iterable[dt.date], th, until: dt.date) -> list[Change]:
    """Every status change up to `until` as (day, old, new), simulating each day in turn."""
    days = sorted({p for p in purchases if p <= until})
    if not days:
        return []
    purchase_days = set(days)
    changes: list[Change] = []
    current: str | None = None
    months_bought: set[YearMonth] = set()
    first = days[0]
    last = first
    t = first
    while t <= until:
        bought_today = t in purchase_days
        if bought_today:
            last = t
            months_bought.add((t.year, t.month))
        status = rule_of_the_day(
            t,
            first=first,
            last=last,
            months_bought=months_bought,
            bought_today=bought_today,
            th=th,
        )
        if status is not None and status != current:
            changes.append((t, current, status))
            current = status
        t += ONE_DAY
    return changes


def oracle_status(purchases: Iterable[dt.date], th, on: dt.date) -> str | None:
    """The status on day `on`: what the latest day with a holding rule gave (None: no purchase)."""
    changes = oracle_changes(purchases, th, on)
    return changes[-1][2] if changes else None
