"""The status a purchase accrues at: the one-row-per-customer rule equals the full replay."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customers.tests.factories import CustomerFactory, StoreFactory
from loyalty import status_rules
from loyalty.purchase_status import StatusOnPurchase, _replayed, status_by_rules
from loyalty.status_rules import DayCutoffs, Thresholds, month_index
from loyalty.tests.factories import buy

START = dt.date(2023, 1, 1).toordinal()


@settings(max_examples=400, deadline=None)
@given(
    days=st.sets(st.integers(0, 1100), min_size=1, max_size=40),
    pick=st.integers(0, 39),
    lost=st.integers(2, 14),
    vip=st.integers(2, 14),
    growing=st.integers(1, 6),
    newcomer=st.integers(1, 3),
)
def test_rules_on_a_purchase_day_equal_the_replay(days, pick, lost, vip, growing, newcomer):
    th = Thresholds(
        lost_months=lost,
        vip_months=vip,
        growing_months=growing,
        newcomer_months=newcomer,
        one_time_min_months=3,
        one_time_max_months=6,
    )
    ordinals = sorted(START + d for d in days)
    day = dt.date.fromordinal(ordinals[pick % len(ordinals)])
    dates = [dt.date.fromordinal(o) for o in ordinals]
    fast = status_by_rules(
        min(dates), {month_index(d) for d in dates}, day, th, DayCutoffs.for_day(day, th)
    )
    assert fast == _replayed(ordinals, day, th)


@pytest.mark.django_db
def test_statuses_read_from_the_database_for_many_customers():
    store = StoreFactory()
    vip, newcomer = CustomerFactory(), CustomerFactory()
    for month in range(1, 13):
        buy(vip, store, dt.date(2025, month, 15))
    buy(vip, store, dt.date(2026, 1, 10))
    buy(newcomer, store, dt.date(2026, 1, 10))
    buy(newcomer, store, dt.date(2024, 1, 10), status="cancelled")  # does not count
    statuses = StatusOnPurchase([vip.pk, newcomer.pk], [dt.date(2026, 1, 10)])
    assert statuses.status(vip.pk, dt.date(2026, 1, 10)) == status_rules.VIP
    assert statuses.status(newcomer.pk, dt.date(2026, 1, 10)) == status_rules.NEWCOMER
    # An unknown customer buys for the first time.
    assert statuses.status(-1, dt.date(2026, 1, 10)) == status_rules.NEWCOMER
