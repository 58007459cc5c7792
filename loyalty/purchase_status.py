"""A customer's status on a purchase's date, counting that purchase and the earlier ones.

This is the status a purchase accrues bonuses at (``../shared/PRODUCT.md``; the bonuses issue):
the statuses engine replays the customer's completed purchase days up to the purchase, so a
first purchase is a newcomer's and the result does not depend on when the nightly run last ran.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from customers.models import Purchase

from . import status_rules
from .recompute.common import thresholds
from .status_rules import Thresholds


def purchase_days(
    customer_ids: Iterable[int], until: dt.date, exclude: Iterable[int] = ()
) -> dict[int, list[int]]:
    """Each customer's distinct completed purchase days up to `until` as sorted ordinals,
    leaving out the purchases `exclude` (ids: the ones being written now)."""
    ids = list(set(customer_ids))
    days: dict[int, set[int]] = defaultdict(set)
    if not ids:
        return {}
    rows = Purchase.objects.filter(
        customer_id__in=ids, status=Purchase.Status.COMPLETED, purchase_date__lte=until
    )
    excluded = list(exclude)
    if excluded:
        rows = rows.exclude(pk__in=excluded)
    for customer_id, day in rows.values_list("customer_id", "purchase_date").distinct():
        days[customer_id].add(day.toordinal())
    return {customer_id: sorted(found) for customer_id, found in days.items()}


def status_with(days: list[int], day: dt.date, th: Thresholds) -> str:
    """The status on `day` of a customer who bought on `days` and buys on `day` too."""
    ordinal = day.toordinal()
    if not days or days[-1] < ordinal:
        history = [*days, ordinal]
    elif ordinal in days:
        history = [d for d in days if d <= ordinal]
    else:
        history = sorted({*(d for d in days if d <= ordinal), ordinal})
    return status_rules.status_on(history, th, ordinal) or status_rules.NEWCOMER


def status_at_purchase(
    customer_id: int, day: dt.date, *, exclude_purchase: int | None = None
) -> str:
    """The status customer `customer_id` buys at on `day` (one customer: the API's orders)."""
    days = purchase_days([customer_id], day, [exclude_purchase] if exclude_purchase else [])
    return status_with(days.get(customer_id, []), day, thresholds())
