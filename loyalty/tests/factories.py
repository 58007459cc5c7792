"""Test data for the loyalty app."""

import datetime as dt
from decimal import Decimal

from customers.models import Purchase
from customers.tests.factories import PurchaseFactory

MSK = dt.timezone(dt.timedelta(hours=3))


def buy(
    customer,
    store,
    day: dt.date,
    total: str = "100.00",
    status: str = Purchase.Status.COMPLETED,
    hour: int = 12,
) -> Purchase:
    """A purchase of `customer` in `store` on `day` (at `hour`, Moscow time)."""
    return PurchaseFactory(
        customer=customer,
        store=store,
        purchased_at=dt.datetime.combine(day, dt.time(hour), tzinfo=MSK),
        purchase_date=day,
        total=Decimal(total),
        status=status,
    )
