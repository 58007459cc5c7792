"""Orders (loyalty.orders): placed, completed, cancelled, returned wholly or by lines — exact
amounts, bonuses through the ledger, nothing written on a refusal."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from customers.models import Purchase, PurchaseLine, Source
from customers.tests.factories import CustomerFactory, StoreFactory
from loyalty.discounts import customer_discount, lifetime_total
from loyalty.ledger import bonus_grant
from loyalty.ledger_check import ledger_differences
from loyalty.models import (
    BonusAccount,
    BonusDiscountType,
    BonusMovement,
    CustomerFigures,
    MovementKind,
    PersonalDiscount,
)
from loyalty.orders import (
    OrderConflict,
    OrderLine,
    ReturnLine,
    order_cancel,
    order_complete,
    order_place,
    order_return,
)
from loyalty.services import customer_statuses_refresh
from loyalty.tests.factories import buy

pytestmark = pytest.mark.django_db
D = Decimal
NUROFEN, MASK, RX = "4600000000011", "4600000000028", "4600000000035"


@pytest.fixture(autouse=True)
def _catalogue(products):
    """NUROFEN, MASK and RX (conftest's products) in the catalogue."""


@pytest.fixture
def store():
    return StoreFactory(code="A-017")


@pytest.fixture
def customer():
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "1000.00", key=f"seed-{customer.pk}")
    return customer


def place(customer, *, number="A-1", lines=None, spend="0.00", **kwargs):
    kwargs.setdefault("store_code", "A-017")
    return order_place(
        customer_id=customer.pk,
        number=number,
        source=kwargs.pop("source", Source.APP),
        lines=lines or [OrderLine(NUROFEN, D("2"), D("150.50")), OrderLine(MASK, D("1"), D("99"))],
        bonus_to_spend=D(spend),
        **kwargs,
    ).order


def balance(customer) -> D:
    return BonusAccount.objects.get(customer=customer).balance


def movements(order) -> list[tuple[str, D]]:
    return list(
        BonusMovement.objects.filter(purchase=order).order_by("id").values_list("kind", "amount")
    )


def test_a_placed_order_holds_its_spend_and_accrues_nothing(store, customer):
    order = place(customer, spend="100.00")

    order.refresh_from_db()
    assert (order.status, order.source, order.external_id, order.order_ref) == (
        "placed",
        "app",
        "A-1",
        "A-1",
    )
    assert (order.fulfilment, order.store, order.purchase_type.code) == (
        "pickup",
        store,
        "preorder",
    )
    assert (order.total, order.discount, order.bonus_spent) == (D("400.00"), D("0.00"), D("100"))
    assert list(order.lines.order_by("id").values_list("qty", "price", "amount")) == [
        (D("2.000"), D("150.50"), D("301.00")),
        (D("1.000"), D("99.00"), D("99.00")),
    ]
    assert movements(order) == [("redemption", D("-100.00"))]
    assert balance(customer) == D("900.00")
    assert ledger_differences() == []


def test_completing_posts_the_accrual_at_the_status_of_the_day_and_keeps_the_spend(store, customer):
    order = place(customer, spend="100.00")
    when = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)

    order_complete(order_id=order.pk, store_code="A-017", now=when)

    order.refresh_from_db()
    assert (order.status, order.purchased_at, order.purchase_date) == (
        "completed",
        when,
        dt.date(2026, 12, 1),
    )
    # A newcomer (the first completed purchase): 3 % of 400.00 − 100.00 spent.
    assert movements(order) == [("redemption", D("-100.00")), ("accrual", D("9.00"))]
    accrual = BonusMovement.objects.get(purchase=order, kind="accrual")
    assert (accrual.accrual_percent, accrual.status) == (D("3.00"), "newcomer")
    assert balance(customer) == D("909.00")
    assert ledger_differences() == []


def test_cancelling_a_placed_order_refunds_its_spend(store, customer):
    order = place(customer, spend="100.00")

    order_cancel(order_id=order.pk)

    order.refresh_from_db()
    assert order.status == "cancelled"
    assert movements(order) == [("redemption", D("-100.00")), ("redemption_reversal", D("100.00"))]
    assert balance(customer) == D("1000.00")
    assert ledger_differences() == []


def test_a_whole_return_reverses_the_accrual_and_refunds_the_spend(store, customer):
    order = place(customer, spend="100.00")
    order_complete(order_id=order.pk)

    order_return(order_id=order.pk)

    order.refresh_from_db()
    assert order.status == "returned" and order.lines.count() == 2
    assert movements(order) == [
        ("redemption", D("-100.00")),
        ("accrual", D("9.00")),
        ("redemption_reversal", D("100.00")),
        ("accrual_reversal", D("-9.00")),
    ]
    assert balance(customer) == D("1000.00")
    assert ledger_differences() == []


def test_a_partial_return_reduces_the_lines_and_reverses_bonuses_in_proportion(store, customer):
    PersonalDiscount.objects.create(
        customer=customer,
        discount_type=BonusDiscountType.objects.get(code="personal"),
        percent=D("10"),
        valid_from=dt.date(2020, 1, 1),
    )
    lines = [
        OrderLine(NUROFEN, D("2"), D("150.50")),  # 301.00
        OrderLine(MASK, D("1"), D("99.00")),  # 99.00
        OrderLine(RX, D("1"), D("100.00")),  # prescription-only: no bonuses
    ]
    # 500.00 − 10 % = 450.00; eligible 400.00 − 40.00 of the discount = 360.00 (cap 108.00).
    order = place(customer, lines=lines, spend="90.00")
    order_complete(order_id=order.pk)
    assert movements(order) == [("redemption", D("-90.00")), ("accrual", D("8.10"))]

    order_return(order_id=order.pk, lines=[ReturnLine(NUROFEN, D("1"))])

    order.refresh_from_db()
    assert order.status == "completed"
    assert list(order.lines.order_by("id").values_list("product__sku", "qty", "amount")) == [
        (NUROFEN, D("1.000"), D("150.50")),
        (MASK, D("1.000"), D("99.00")),
        (RX, D("1.000"), D("100.00")),
    ]
    # 349.50 kept; the discount in proportion: 50.00 × 349.50 / 500.00 = 34.95.
    assert (order.discount, order.total) == (D("34.95"), D("314.55"))
    # Eligible kept: 249.50 − 24.95 = 224.55 of 360.00: the spend kept 90.00 × 224.55 / 360.00.
    assert order.bonus_spent == D("56.14")
    # Accrual 3 % of 224.55 − 56.14 = 5.05: 3.05 of the 8.10 reversed; 33.86 refunded.
    assert movements(order)[2:] == [
        ("redemption_reversal", D("33.86")),
        ("accrual_reversal", D("-3.05")),
    ]
    assert balance(customer) == D("1000.00") - D("90.00") + D("8.10") + D("33.86") - D("3.05")
    assert ledger_differences() == []


def test_returning_every_line_is_a_whole_return(store, customer):
    order = place(customer, spend="50.00")
    order_complete(order_id=order.pk)

    order_return(order_id=order.pk, lines=[ReturnLine(MASK, D("1")), ReturnLine(NUROFEN, D("2"))])

    order.refresh_from_db()
    assert (order.status, order.total, order.lines.count()) == ("returned", D("400.00"), 2)
    assert balance(customer) == D("1000.00")


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([ReturnLine("4699999999999", D("1"))], "lines.0.sku"),
        ([ReturnLine(MASK, D("0.5")), ReturnLine(NUROFEN, D("2.001"))], "lines.1.qty"),
        ([ReturnLine(MASK, D("0.6")), ReturnLine(MASK, D("0.6"))], "lines.0.qty"),
    ],
)
def test_a_bad_partial_return_names_the_line_and_changes_nothing(store, customer, lines, field):
    order = place(customer, spend="50.00")
    order_complete(order_id=order.pk)
    before = movements(order)

    with pytest.raises(ValidationError) as error:
        order_return(order_id=order.pk, lines=lines)

    assert field in error.value.message_dict
    order.refresh_from_db()
    assert (order.status, order.total, order.bonus_spent) == ("completed", D("400.00"), D("50"))
    assert list(order.lines.values_list("qty", flat=True)) == [D("2.000"), D("1.000")]
    assert movements(order) == before


@pytest.mark.parametrize(
    ("prepare", "act", "code"),
    [
        ("complete", "complete", "order_not_placed"),
        ("cancel", "complete", "order_not_placed"),
        ("complete", "cancel", "order_not_placed"),
        (None, "return", "order_not_completed"),
        ("cancel", "return", "order_not_completed"),
    ],
)
def test_an_invalid_transition_is_refused_with_a_code(store, customer, prepare, act, code):
    actions = {"complete": order_complete, "cancel": order_cancel, "return": order_return}
    order = place(customer, spend="10.00")
    if prepare:
        actions[prepare](order_id=order.pk)
    order.refresh_from_db()
    status, before = order.status, movements(order)

    with pytest.raises(OrderConflict) as error:
        actions[act](order_id=order.pk)

    assert (error.value.code, error.value.field) == (code, "status")
    order.refresh_from_db()
    assert order.status == status and movements(order) == before


def test_a_spend_over_the_rules_share_names_bonus_to_spend_and_writes_nothing(store, customer):
    # 30 % of 400.00 = 120.00.
    with pytest.raises(ValidationError) as error:
        place(customer, spend="120.01")

    assert error.value.message_dict["bonus_to_spend"] == [
        "At most 120.00 bonuses may pay for this order (the rules' share of what it costs in "
        "products that accept bonuses)."
    ]
    assert not Purchase.objects.exists() and not PurchaseLine.objects.exists()
    place(customer, spend="120.00")


def test_a_spend_over_the_balance_is_refused_and_writes_nothing(store):
    poor = CustomerFactory()
    bonus_grant(poor.pk, MovementKind.CAMPAIGN, "20.00", key="seed-poor")

    with pytest.raises(OrderConflict) as error:
        place(poor, spend="20.01")

    assert (error.value.code, error.value.field) == ("insufficient_bonus", "bonus_to_spend")
    assert error.value.message == "Not enough bonuses: 20.01 requested, 20.00 available."
    assert not Purchase.objects.exists() and not PurchaseLine.objects.exists()
    assert balance(poor) == D("20.00")


def test_an_order_number_is_unique_in_its_channel(store, customer):
    place(customer, number="A-7")

    with pytest.raises(OrderConflict) as error:
        place(customer, number="A-7", store_code=None, delivery=True)

    assert (error.value.code, error.value.field) == ("order_exists", "number")
    place(customer, number="A-7", source=Source.SITE)  # the website's own numbering
    assert Purchase.objects.filter(external_id="A-7").count() == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"store_code": None}, "store"),  # neither pick-up nor delivery
        ({"delivery": True}, "store"),  # both
        ({"store_code": "Z-404"}, "store"),
        ({"source": Source.POS, "store_code": None}, "store"),
        ({"lines": [OrderLine("4699999999999", D("1"), D("1"))]}, "lines.0.sku"),
        ({"status": "returned"}, "status"),
    ],
)
def test_bad_order_input_names_the_field(store, customer, kwargs, field):
    with pytest.raises(ValidationError) as error:
        place(customer, **kwargs)
    assert field in error.value.message_dict
    assert not Purchase.objects.exists()


def test_a_delivery_order_and_a_tills_online_sale(store, customer):
    delivery = place(customer, number="W-1", store_code=None, delivery=True)
    assert (delivery.fulfilment, delivery.store, delivery.purchase_type.code) == (
        "delivery",
        None,
        "delivery",
    )

    sale = place(customer, number="000123", source=Source.POS, status="completed", spend="20.00")
    assert (sale.status, sale.fulfilment, sale.order_ref, sale.purchase_type.code) == (
        "completed",
        "",
        "",
        "retail",
    )
    assert movements(sale) == [("redemption", D("-20.00")), ("accrual", D("11.40"))]


def test_a_placed_order_changes_neither_figures_nor_discount_until_completed(store, customer):
    buy(customer, store, dt.date(2026, 1, 10), total="4900.00")
    customer_statuses_refresh(customer_ids=[customer.pk])
    figures = CustomerFigures.objects.get(customer=customer)
    assert (figures.purchase_count, figures.lifetime_total) == (1, D("4900.00"))

    order = place(customer)  # 400.00: would pass the 5,000 tier

    assert lifetime_total(customer.pk) == D("4900.00")
    assert customer_discount(customer.pk) is None
    customer_statuses_refresh(customer_ids=[customer.pk])
    figures.refresh_from_db()
    assert (figures.purchase_count, figures.lifetime_total) == (1, D("4900.00"))

    order_complete(order_id=order.pk)

    assert lifetime_total(customer.pk) == D("5300.00")
    assert customer_discount(customer.pk).percent == D("3.00")
    customer_statuses_refresh(customer_ids=[customer.pk])
    figures.refresh_from_db()
    assert (figures.purchase_count, figures.lifetime_total) == (2, D("5300.00"))
