"""Customer figures and RFM scores as pure functions (../shared/PRODUCT.md, "Customer figures").

The generic recomputation (SQLite, and touched customers on any database) computes them here from
a customer's purchases; the PostgreSQL nightly computes the same in SQL, and the tests hold the two
to the same answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from .status_rules import add_months, month_index

CENT = Decimal("0.01")
DAYS_PER_MONTH = Decimal("30.4375")
SCORED_MONTHS = 24  # RFM covers customers with a purchase in the last 24 months ...
RECENT_MONTHS = 12  # ... F and M count the last 12 months, as does the home store


class PurchaseFact(NamedTuple):
    """What the figures need of one completed purchase."""

    date: dt.date
    total: Decimal
    store_id: int | None
    purchased_at: dt.datetime


@dataclass
class Figures:
    purchase_count: int
    lifetime_total: Decimal
    average_check: Decimal
    frequency: Decimal
    first_purchase: dt.date
    last_purchase: dt.date
    home_store_id: int | None
    purchases_12m: int
    total_12m: Decimal
    month_bits: int  # bit i: a purchase in the (i+1)-th calendar month before as_of's month


def round_money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def frequency(count: int, first: dt.date, as_of: dt.date) -> Decimal:
    """Purchases per month: count / max(1, days since the first purchase / 30.4375)."""
    days = Decimal((as_of - first).days)
    return round_money(Decimal(count) * DAYS_PER_MONTH / max(DAYS_PER_MONTH, days))


def recent_since(as_of: dt.date) -> dt.date:
    """Purchases after this date are "in the last 12 months"."""
    return add_months(as_of, -RECENT_MONTHS)


def scored_since(as_of: dt.date) -> dt.date:
    """Customers whose last purchase is after this date get RFM scores."""
    return add_months(as_of, -SCORED_MONTHS)


def figures_of(
    purchases: Sequence[PurchaseFact], as_of: dt.date, bit_months: int
) -> Figures | None:
    """The figures over the given completed purchases up to `as_of` (None when there are none)."""
    counted = [p for p in purchases if p.date <= as_of]
    if not counted:
        return None
    count = len(counted)
    total = sum((p.total for p in counted), Decimal("0.00"))
    first = min(p.date for p in counted)
    last = max(p.date for p in counted)
    since = recent_since(as_of)
    recent = [p for p in counted if p.date > since]
    by_store: dict[int, list] = {}
    for p in recent:
        if p.store_id is not None:
            entry = by_store.setdefault(p.store_id, [0, p.purchased_at])
            entry[0] += 1
            entry[1] = max(entry[1], p.purchased_at)
    home = (
        max(by_store.items(), key=lambda item: (item[1][0], item[1][1], item[0]))[0]
        if by_store
        else None
    )
    this_month = month_index(as_of)
    bits = 0
    for p in counted:
        ago = this_month - month_index(p.date) - 1
        if 0 <= ago < bit_months:
            bits |= 1 << ago
    return Figures(
        purchase_count=count,
        lifetime_total=total,
        average_check=round_money(total / count),
        frequency=frequency(count, first, as_of),
        first_purchase=first,
        last_purchase=last,
        home_store_id=home,
        purchases_12m=len(recent),
        total_12m=sum((p.total for p in recent), Decimal("0.00")),
        month_bits=bits,
    )


# --- RFM ------------------------------------------------------------------------------------


def scores(values: Sequence) -> list[int]:
    """ceil(5 × cume_dist) of each value among all of them, ascending; equal values score equally.

    Computed on integers (5·k/N rounded up, k = how many values are ≤ this one) so that no
    floating-point cume_dist can push a score over a boundary.
    """
    n = len(values)
    if not n:
        return []
    order = sorted(range(n), key=lambda i: values[i])
    result = [0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        score = (5 * (j + 1) + n - 1) // n
        for k in range(i, j + 1):
            result[order[k]] = score
        i = j + 1
    return result


def breakpoints(values: Sequence, value_scores: Sequence[int]) -> list[list]:
    """[[largest value with this score, score], ...] ascending: what incremental runs score by."""
    top: dict[int, object] = {}
    for value, score in zip(values, value_scores, strict=True):
        if score not in top or value > top[score]:
            top[score] = value
    return [[top[s], s] for s in sorted(top)]


def score_against(value, points: Iterable[Sequence]) -> int | None:
    """The score `value` would get against saved breakpoints (None when there are none)."""
    last = None
    for top, score in points:
        if value <= top:
            return score
        last = score
    return None if last is None else 5
