"""GET /api/v1/customers/{id}/loyalty/: status, figures, RFM scores, discount, next tier."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.merge import customer_merge
from customers.tests.factories import CustomerFactory, StoreFactory
from loyalty.models import (
    BonusDiscountType,
    CumulativeDiscountTier,
    CustomerFigures,
    PersonalDiscount,
    StatusRun,
)
from loyalty.tests.factories import buy

pytestmark = pytest.mark.django_db
D = Decimal


def url(customer_id) -> str:
    return f"/api/v1/customers/{customer_id}/loyalty/"


@pytest.fixture
def reader(api):
    client = api("customers:read")
    client.get(url(0))  # the first call also stamps last_used_at: not counted below
    return client


def nightly_run(as_of: dt.date) -> StatusRun:
    return StatusRun.objects.create(
        kind=StatusRun.Kind.NIGHTLY, as_of=as_of, finished_at=timezone.now()
    )


def figures(customer, **values) -> CustomerFigures:
    row = {
        "status": "regular",
        "status_since": dt.date(2026, 2, 1),
        "purchase_count": 7,
        "lifetime_total": D("6100.00"),
        "average_check": D("871.43"),
        "frequency": D("0.58"),
        "first_purchase": dt.date(2025, 6, 3),
        "last_purchase": dt.date(2026, 4, 28),
        "purchases_12m": 7,
        "total_12m": D("6100.00"),
        "r_score": 4,
        "f_score": 3,
        "m_score": 5,
    }
    row.update(values)
    return CustomerFigures.objects.create(customer=customer, **row)


def test_status_figures_scores_discount_and_next_tier(reader):
    customer = CustomerFactory()
    figures(customer)
    nightly_run(dt.date(2026, 5, 1))
    store = StoreFactory()
    # Today's total is what the discount follows, whatever the figures' date: 6,100 + 900.
    buy(customer, store, timezone.localdate() - dt.timedelta(days=40), "6100.00")
    buy(customer, store, timezone.localdate(), "900.00")

    response = reader.get(url(customer.pk))

    assert response.status_code == 200
    tier = CumulativeDiscountTier.objects.get(threshold=5000)
    assert response.json() == {
        "customer_id": customer.pk,
        "status": {"code": "regular", "label": "Regular"},
        "status_since": "2026-02-01",
        "figures": {
            "as_of": "2026-05-01",
            "purchase_count": 7,
            "lifetime_total": "6100.00",
            "average_check": "871.43",
            "frequency": "0.58",
            "first_purchase": "2025-06-03",
            "last_purchase": "2026-04-28",
        },
        "rfm": {"r": 4, "f": 3, "m": 5},
        "discount": {
            "percent": "3.00",
            "source": "cumulative",
            "label": "Cumulative discount 3 % (purchases from 5,000 ₽)",
            "valid_until": None,
        },
        "cumulative_total": "7000.00",
        "next_tier": {"threshold": "15000.00", "percent": "5.00", "amount_left": "8000.00"},
    }
    assert tier.percent == D("3.00")


def test_a_personal_discount_that_beats_the_tier_says_until_when(reader):
    customer = CustomerFactory()
    buy(customer, StoreFactory(), timezone.localdate(), "5000.00")
    until = timezone.localdate() + dt.timedelta(days=10)
    PersonalDiscount.objects.create(
        customer=customer,
        discount_type=BonusDiscountType.objects.get(code="personal"),
        percent=D("7.5"),
        valid_from=timezone.localdate() - dt.timedelta(days=1),
        valid_until=until,
    )

    body = reader.get(url(customer.pk)).json()

    assert body["discount"]["percent"] == "7.50"
    assert body["discount"]["source"] == "personal"
    assert body["discount"]["valid_until"] == until.isoformat()
    assert body["discount"]["label"].startswith("Персональная скидка 7.5 % until ")
    # 5 % at 15,000 would not raise a 7.5 % discount: no next tier.
    assert body["next_tier"] is None


def test_a_customer_without_purchases_has_no_status_zeros_and_the_first_tier_ahead(reader):
    customer = CustomerFactory()

    body = reader.get(url(customer.pk)).json()

    assert body == {
        "customer_id": customer.pk,
        "status": None,
        "status_since": None,
        "figures": {
            "as_of": None,
            "purchase_count": 0,
            "lifetime_total": "0.00",
            "average_check": "0.00",
            "frequency": "0.00",
            "first_purchase": None,
            "last_purchase": None,
        },
        "rfm": {"r": None, "f": None, "m": None},
        "discount": None,
        "cumulative_total": "0.00",
        "next_tier": {"threshold": "5000.00", "percent": "3.00", "amount_left": "5000.00"},
    }


def test_the_status_label_follows_the_language_asked_for(reader):
    customer = CustomerFactory()
    figures(customer, status="vip")

    body = reader.get(url(customer.pk), HTTP_ACCEPT_LANGUAGE="ru").json()

    assert body["status"] == {"code": "vip", "label": "VIP"}
    growing = CustomerFactory()
    figures(growing, status="growing")
    assert reader.get(url(growing.pk), HTTP_ACCEPT_LANGUAGE="ru").json()["status"] == {
        "code": "growing",
        "label": "Растущий",
    }


@pytest.mark.parametrize("customer_id", ["0", "424242", "9" * 25, "abc", "%00"])
def test_an_unknown_customer_is_404(reader, customer_id):
    response = reader.get(url(customer_id))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_merged_customer_answers_404_naming_the_survivor(reader):
    survivor = CustomerFactory(phone="+79123456789", card_number=None, email=None)
    merged = CustomerFactory(phone=None, card_number="2900000099999", email=None)
    customer_merge(survivor=survivor, merged=merged, reason="test")

    response = reader.get(url(merged.pk))

    assert response.status_code == 404
    assert response.json()["code"] == "customer_merged"
    assert str(survivor.pk) in response.json()["message"]


def test_loyalty_needs_the_customers_scope(api):
    customer = CustomerFactory()
    response = api("bonuses:read").get(url(customer.pk))
    assert response.status_code == 403 and response.json()["code"] == "missing_scope"


def test_loyalty_costs_the_same_queries_whatever_the_history(reader, django_assert_num_queries):
    customer = CustomerFactory()
    figures(customer)
    nightly_run(dt.date(2026, 5, 1))
    store = StoreFactory()
    for days in range(20):
        buy(customer, store, timezone.localdate() - dt.timedelta(days=days), "300.00")
    PersonalDiscount.objects.create(
        customer=customer,
        discount_type=BonusDiscountType.objects.get(code="personal"),
        percent=D("2"),
        valid_from=timezone.localdate(),
    )
    # The first request reads the configuration and the API client, once.
    assert reader.get(url(customer.pk)).status_code == 200
    # The customer with its figures; the figures' date; the lifetime total and the personal
    # discounts (discount_outlook; the tiers are the process's copy).
    with django_assert_num_queries(4):
        assert reader.get(url(customer.pk)).status_code == 200
    newcomer = CustomerFactory()
    with django_assert_num_queries(4):
        assert reader.get(url(newcomer.pk)).status_code == 200
