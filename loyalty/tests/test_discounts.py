"""A customer's current discount (loyalty.discounts): the cumulative tier by lifetime total and
personal discounts, the best one winning. The default tiers (3 % from 5,000 ₽, 5 % from
15,000 ₽) come from migration 0006."""

import datetime as dt
from decimal import Decimal

import pytest

from customers.models import Purchase
from customers.tests.factories import CustomerFactory, StoreFactory
from loyalty.discounts import (
    AppliedDiscount,
    NextTier,
    customer_discount,
    discount_outlook,
    lifetime_total,
)
from loyalty.models import BonusDiscountType, CumulativeDiscountTier, PersonalDiscount
from loyalty.tests.factories import buy

pytestmark = pytest.mark.django_db

D = Decimal
DAY = dt.date(2026, 5, 15)


@pytest.fixture
def store():
    return StoreFactory()


@pytest.fixture
def customer():
    return CustomerFactory()


def tier(threshold: str):
    return CumulativeDiscountTier.objects.get(threshold=D(threshold))


def personal(customer, percent: str, valid_from=dt.date(2026, 5, 1), valid_until=None, **kw):
    return PersonalDiscount.objects.create(
        customer=customer,
        discount_type=BonusDiscountType.objects.get(code="personal"),
        percent=D(percent),
        valid_from=valid_from,
        valid_until=valid_until,
        **kw,
    )


def spend(customer, store, *totals: str, day=dt.date(2026, 3, 1), status="completed"):
    for total in totals:
        buy(customer, store, day, total, status=status)


# --- the cumulative discount --------------------------------------------------------------------


def test_below_the_first_tier_there_is_no_discount_but_the_next_tier_is_known(customer, store):
    spend(customer, store, "4000.00", "999.99")

    assert customer_discount(customer.pk, DAY) is None
    outlook = discount_outlook(customer.pk, DAY)
    assert outlook.lifetime_total == D("4999.99")
    assert outlook.next_tier == NextTier(
        tier_id=tier("5000").pk, threshold=D("5000.00"), percent=D("3.00"), amount_left=D("0.01")
    )


def test_exactly_at_the_threshold_the_tier_applies(customer, store):
    spend(customer, store, "4000.00", "1000.00")

    assert customer_discount(customer.pk, DAY) == AppliedDiscount(
        percent=D("3.00"),
        source="cumulative",
        label="Cumulative discount 3 % (purchases from 5,000 ₽)",
        source_id=tier("5000").pk,
        lifetime_total=D("5000.00"),
        next_tier=NextTier(
            tier_id=tier("15000").pk,
            threshold=D("15000.00"),
            percent=D("5.00"),
            amount_left=D("10000.00"),
        ),
    )


def test_the_highest_tier_reached_applies_and_there_is_no_next_one(customer, store):
    spend(customer, store, "10000.00", "5000.00")

    discount = customer_discount(customer.pk, DAY)
    assert (discount.percent, discount.source_id) == (D("5.00"), tier("15000").pk)
    assert discount.lifetime_total == D("15000.00")
    assert discount.next_tier is None


def test_cancelled_and_returned_purchases_do_not_count(customer, store):
    spend(customer, store, "4999.99")
    spend(customer, store, "20000.00", status=Purchase.Status.CANCELLED)
    spend(customer, store, "20000.00", status=Purchase.Status.RETURNED)

    assert lifetime_total(customer.pk, DAY) == D("4999.99")
    assert customer_discount(customer.pk, DAY) is None


def test_other_customers_and_later_purchases_do_not_count(customer, store):
    spend(customer, store, "4000.00")
    spend(CustomerFactory(), store, "50000.00")
    spend(customer, store, "2000.00", day=DAY + dt.timedelta(days=1))

    assert lifetime_total(customer.pk, DAY) == D("4000.00")
    assert customer_discount(customer.pk, DAY) is None
    # The next day the later purchase counts.
    assert customer_discount(customer.pk, DAY + dt.timedelta(days=1)).percent == D("3.00")


def test_a_purchase_counts_at_once_without_waiting_for_the_figures(customer, store):
    spend(customer, store, "4999.00")
    assert customer_discount(customer.pk, DAY) is None

    spend(customer, store, "1.00", day=DAY)  # no statuses recomputation in between

    assert customer_discount(customer.pk, DAY).percent == D("3.00")


def test_an_inactive_tier_is_ignored_and_not_offered_as_the_next_one(customer, store):
    spend(customer, store, "20000.00")
    CumulativeDiscountTier.objects.filter(threshold=D("15000")).update(is_active=False)
    top = CumulativeDiscountTier.objects.create(
        threshold=D("30000"), percent=D("10"), is_active=False
    )

    discount = customer_discount(customer.pk, DAY)

    assert (discount.percent, discount.source_id) == (D("3.00"), tier("5000").pk)
    assert discount.next_tier is None
    top.is_active = True
    top.save()
    assert customer_discount(customer.pk, DAY).next_tier == NextTier(
        tier_id=top.pk, threshold=D("30000.00"), percent=D("10.00"), amount_left=D("10000.00")
    )


def test_a_lower_tier_with_a_higher_percent_is_the_best_one_reached(customer, store):
    # Tiers need not rise: the best percent reached wins, not the highest threshold.
    CumulativeDiscountTier.objects.filter(threshold=D("5000")).update(percent=D("6"))
    spend(customer, store, "16000.00")

    discount = customer_discount(customer.pk, DAY)

    assert (discount.percent, discount.source_id) == (D("6.00"), tier("5000").pk)


def test_without_purchases_or_discounts_there_is_nothing(customer):
    assert customer_discount(customer.pk, DAY) is None
    assert discount_outlook(customer.pk, DAY).lifetime_total == D("0.00")


# --- personal discounts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "applies"),
    [
        (dt.date(2026, 4, 30), False),  # the day before
        (dt.date(2026, 5, 1), True),  # the first day
        (dt.date(2026, 5, 31), True),  # the last day, inclusive
        (dt.date(2026, 6, 1), False),  # the day after
    ],
)
def test_a_personal_discount_applies_from_its_first_to_its_last_day(customer, day, applies):
    discount = personal(customer, "10", dt.date(2026, 5, 1), dt.date(2026, 5, 31))

    applied = customer_discount(customer.pk, day)

    if applies:
        assert (applied.source, applied.source_id, applied.percent) == (
            "personal",
            discount.pk,
            D("10.00"),
        )
        assert applied.valid_until == dt.date(2026, 5, 31)
        assert applied.label == "Персональная скидка 10 % until 05/31/2026"
    else:
        assert applied is None


def test_a_personal_discount_without_an_end_applies_for_good(customer):
    discount = personal(customer, "2.5", dt.date(2026, 5, 1))

    applied = customer_discount(customer.pk, dt.date(2036, 1, 1))

    assert (applied.source_id, applied.percent) == (discount.pk, D("2.50"))
    assert applied.label == "Персональная скидка 2.5 %"


def test_another_customers_personal_discount_does_not_apply(customer):
    personal(CustomerFactory(), "10")
    assert customer_discount(customer.pk, DAY) is None


# --- the best one -------------------------------------------------------------------------------


def test_the_higher_percent_wins_between_the_tier_and_a_personal_discount(customer, store):
    spend(customer, store, "15000.00")  # 5 %
    low = personal(customer, "4")

    assert customer_discount(customer.pk, DAY).source == "cumulative"

    high = personal(customer, "7")
    applied = customer_discount(customer.pk, DAY)
    assert (applied.source, applied.source_id, applied.percent) == ("personal", high.pk, D("7.00"))
    assert low.pk != high.pk


def test_on_equal_percents_the_personal_discount_wins(customer, store):
    spend(customer, store, "15000.00")  # 5 %
    discount = personal(customer, "5")

    applied = customer_discount(customer.pk, DAY)

    assert (applied.source, applied.source_id) == ("personal", discount.pk)


def test_among_equal_personal_discounts_the_one_valid_longest_wins_then_the_oldest(customer):
    ending = personal(customer, "5", valid_until=dt.date(2026, 5, 31))
    open_ended = personal(customer, "5")
    personal(customer, "5")  # open-ended too, but newer

    assert customer_discount(customer.pk, DAY).source_id == open_ended.pk
    assert ending.pk < open_ended.pk


def test_the_next_tier_is_one_that_would_beat_the_current_discount(customer, store):
    spend(customer, store, "6000.00")  # 3 %
    personal(customer, "4")

    applied = customer_discount(customer.pk, DAY)

    assert applied.source == "personal"
    assert applied.lifetime_total == D("6000.00")
    assert applied.next_tier == NextTier(
        tier_id=tier("15000").pk,
        threshold=D("15000.00"),
        percent=D("5.00"),
        amount_left=D("9000.00"),
    )
    personal(customer, "5")
    assert customer_discount(customer.pk, DAY).next_tier is None  # 5 % would not be more


def test_the_discount_takes_two_queries(customer, store, django_assert_num_queries):
    spend(customer, store, "6000.00")
    personal(customer, "4")
    customer_discount(customer.pk, DAY)  # the first also reads the configuration (the tiers)

    # The lifetime total and the personal discounts.
    with django_assert_num_queries(2):
        customer_discount(customer.pk, DAY)
