"""Test data for the loyalty app."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from customers.models import Purchase
from customers.tests.factories import PurchaseFactory, PurchaseLineFactory

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


def bonus_purchase(customer, product, price: str = "100.00") -> Purchase:
    """A completed one-line purchase of `customer` made now, its bonuses posted by the ledger."""
    from loyalty.ledger_purchases import purchase_bonuses_sync

    purchase = PurchaseFactory(customer=customer, purchased_at=timezone.now(), total=Decimal(price))
    PurchaseLineFactory(purchase=purchase, product=product, qty=Decimal("1"), price=Decimal(price))
    purchase_bonuses_sync(purchase)
    return purchase
