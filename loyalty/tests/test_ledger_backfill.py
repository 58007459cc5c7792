"""post_purchase_bonuses: purchases stored before the ledger get their bonuses, once."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from customers.tests.factories import (
    CustomerFactory,
    ProductFactory,
    PurchaseFactory,
    PurchaseLineFactory,
)
from loyalty.ledger_check import ledger_differences
from loyalty.models import BonusAccount, BonusMovement

pytestmark = pytest.mark.django_db
MSK = dt.timezone(dt.timedelta(hours=3))


def stored(customer, day, price, spent="0.00"):
    purchase = PurchaseFactory(
        customer=customer,
        purchased_at=dt.datetime.combine(day, dt.time(12), tzinfo=MSK),
        purchase_date=day,
        total=Decimal(price),
        bonus_spent=Decimal(spent),
    )
    PurchaseLineFactory(purchase=purchase, product=ProductFactory(), qty=1, price=Decimal(price))
    return purchase


def test_backfill_posts_in_datetime_order_and_only_once():
    anna, boris = CustomerFactory(), CustomerFactory()
    stored(anna, dt.date(2026, 3, 1), "1000.00")  # earns 30.00
    stored(anna, dt.date(2026, 3, 5), "100.00", spent="30.00")  # spends them, earns 2.10
    stored(boris, dt.date(2026, 3, 1), "100.00", spent="5.00")  # nothing to spend
    out = io.StringIO()
    call_command("post_purchase_bonuses", stdout=out)
    assert "for 3 purchases of 2 customers: 3 movements; 1 spends not covered" in out.getvalue()
    assert BonusAccount.objects.get(customer=anna).balance == Decimal("2.10")
    assert not BonusMovement.objects.filter(customer=boris).exists()
    call_command("post_purchase_bonuses", stdout=out)
    assert BonusMovement.objects.count() == 3
    assert ledger_differences() == []
