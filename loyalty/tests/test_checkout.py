"""The checkout quote (loyalty.checkout): one answer for every channel, exact to the kopeck."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from customers.models import PurchaseType
from customers.tests.factories import CustomerFactory, StoreFactory
from loyalty.bonus_rules import BonusPolicy
from loyalty.checkout import Quote, QuoteLine, checkout_quote
from loyalty.discounts import NextTier
from loyalty.models import (
    AccrualRate,
    BonusAccount,
    BonusDiscountType,
    BonusProductRule,
    BonusRules,
    CumulativeDiscountTier,
    PersonalDiscount,
)
from loyalty.tests.factories import buy

pytestmark = pytest.mark.django_db

D = Decimal
DAY = dt.date(2026, 5, 15)


@pytest.fixture
def customer():
    """A first-time buyer (a newcomer: 3 %) with a 10 % personal discount."""
    customer = CustomerFactory()
    PersonalDiscount.objects.create(
        customer=customer,
        discount_type=BonusDiscountType.objects.get(code="personal"),
        percent=D("10"),
        valid_from=dt.date(2026, 1, 1),
    )
    return customer


def account(customer, balance="1000.00", pending="0.00", debt="0.00") -> BonusAccount:
    return BonusAccount.objects.create(
        customer=customer, balance=D(balance), pending=D(pending), debt=D(debt)
    )


# 2 × 150.50 = 301.00; 0.5 × 10.05 = 5.025 -> 5.03 (half-up); prescription-only 400.00.
BASKET = [
    ("4600000000011", "2", "150.50"),
    ("4600000000028", "0.5", "10.05"),
    ("4600000000035", "1", "400.00"),
]


def refused(customer, lines, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as error:
        checkout_quote(customer.pk, lines, on=DAY, **kwargs)
    return error.value.message_dict


# --- the amounts ----------------------------------------------------------------------------------


def test_the_quote_has_exact_amounts(customer, products):
    account(customer, "1000.00", pending="12.00", debt="3.50")

    quote = checkout_quote(customer.pk, BASKET, on=DAY)

    assert quote.lines == (
        QuoteLine(
            products["nurofen"].pk, "4600000000011", D("2.000"), D("150.50"), D("301.00"), True
        ),
        QuoteLine(products["mask"].pk, "4600000000028", D("0.500"), D("10.05"), D("5.03"), True),
        QuoteLine(products["rx"].pk, "4600000000035", D("1.000"), D("400.00"), D("400.00"), False),
    )
    # Subtotal 706.03; 10 % = 70.603 -> 70.60; to pay 635.43.
    assert (quote.subtotal, quote.discount_percent, quote.discount_amount, quote.total) == (
        D("706.03"),
        D("10.00"),
        D("70.60"),
        D("635.43"),
    )
    assert quote.discount.source == "personal"
    # Eligible lines 306.03 carry 70.60 × 306.03 / 706.03 = 30.6016… -> 30.60 of the discount.
    assert quote.eligible_amount == D("275.43")
    # 30 % of 275.43 = 82.629 -> 82.63; the balance (1,000) does not limit it.
    assert (quote.max_spend_by_share, quote.max_spend) == (D("82.63"), D("82.63"))
    assert (quote.balance, quote.pending, quote.debt) == (D("1000.00"), D("12.00"), D("3.50"))
    # A first purchase: newcomer, 3 %. 275.43 × 3 % = 8.2629 -> 8.26; (275.43 - 82.63) × 3 %
    # = 5.784 -> 5.78.
    assert (quote.status, quote.accrual_percent) == ("newcomer", D("3.00"))
    assert (quote.accrual_without_spending, quote.accrual_with_max_spend) == (D("8.26"), D("5.78"))


def test_the_balance_caps_the_spend_when_it_is_below_the_share(customer, products):
    account(customer, "50.00")

    quote = checkout_quote(customer.pk, BASKET, on=DAY)

    assert (quote.max_spend_by_share, quote.max_spend) == (D("82.63"), D("50.00"))
    # (275.43 - 50.00) × 3 % = 6.7629 -> 6.76.
    assert quote.accrual_with_max_spend == D("6.76")


def test_the_share_caps_the_spend_when_the_balance_is_above_it(customer, products):
    account(customer, "82.64")

    quote = checkout_quote(customer.pk, BASKET, on=DAY)

    assert quote.max_spend == D("82.63")


def test_without_an_account_nothing_may_be_spent_but_the_purchase_still_earns(customer, products):
    quote = checkout_quote(customer.pk, BASKET, on=DAY)

    assert (quote.balance, quote.pending, quote.debt) == (D("0.00"), D("0.00"), D("0.00"))
    assert (quote.max_spend_by_share, quote.max_spend) == (D("82.63"), D("0.00"))
    assert quote.accrual_with_max_spend == quote.accrual_without_spending == D("8.26")


def test_prescription_only_lines_neither_earn_nor_accept_bonuses(customer, products):
    account(customer)

    quote = checkout_quote(customer.pk, [("4600000000035", "3", "400.00")], on=DAY)

    assert (quote.subtotal, quote.discount_amount, quote.total) == (
        D("1200.00"),
        D("120.00"),
        D("1080.00"),
    )
    assert quote.lines[0].bonus_eligible is False
    assert (quote.eligible_amount, quote.max_spend, quote.accrual_without_spending) == (
        D("0.00"),
        D("0.00"),
        D("0.00"),
    )


def test_product_rules_and_the_prescription_switch_change_what_is_eligible(customer, products):
    account(customer)
    lines = [("4600000000011", "1", "100.00"), ("4600000000035", "1", "100.00")]
    # Without discount, to keep the amounts plain.
    PersonalDiscount.objects.all().delete()

    assert checkout_quote(customer.pk, lines, on=DAY).eligible_amount == D("100.00")

    BonusProductRule.objects.create(product=products["rx"], excluded=False)
    BonusProductRule.objects.create(product=products["nurofen"], excluded=True)
    assert checkout_quote(customer.pk, lines, on=DAY).eligible_amount == D("100.00")
    assert [line.bonus_eligible for line in checkout_quote(customer.pk, lines, on=DAY).lines] == [
        False,
        True,
    ]

    BonusProductRule.objects.all().delete()
    BonusRules.objects.filter(pk=1).update(exclude_prescription_only=False, max_redeem_share=50)
    quote = checkout_quote(customer.pk, lines, on=DAY)
    assert (quote.eligible_amount, quote.max_spend) == (D("200.00"), D("100.00"))


def test_the_cumulative_tier_applies_from_the_purchases_already_made(products):
    customer = CustomerFactory()
    buy(customer, StoreFactory(), dt.date(2026, 5, 10), "15000.00")
    account(customer, "500.00")

    quote = checkout_quote(customer.pk, [(products["nurofen"].pk, "4", "250.00")], on=DAY)

    assert quote.discount.source == "cumulative"
    assert quote.discount.source_id == CumulativeDiscountTier.objects.get(threshold=15000).pk
    # 1,000.00 - 5 % = 950.00, all eligible; 30 % = 285.00.
    assert (quote.discount_amount, quote.total, quote.eligible_amount) == (
        D("50.00"),
        D("950.00"),
        D("950.00"),
    )
    assert (quote.max_spend, quote.lifetime_total, quote.next_tier) == (
        D("285.00"),
        D("15000.00"),
        None,
    )
    # A second purchase five days after the first, within the newcomer month: still 3 %.
    assert (quote.status, quote.accrual_percent) == ("newcomer", D("3.00"))
    assert (quote.accrual_without_spending, quote.accrual_with_max_spend) == (
        D("28.50"),
        D("19.95"),
    )


def test_without_any_discount_the_next_tier_is_still_shown(products):
    customer = CustomerFactory()

    quote = checkout_quote(customer.pk, [("4600000000011", "1", "99.99")], on=DAY)

    assert (quote.discount, quote.discount_percent, quote.discount_amount) == (
        None,
        D("0.00"),
        D("0.00"),
    )
    assert quote.total == D("99.99")
    assert quote.next_tier == NextTier(
        tier_id=CumulativeDiscountTier.objects.get(threshold=5000).pk,
        threshold=D("5000.00"),
        percent=D("3.00"),
        amount_left=D("5000.00"),
    )


def test_the_purchase_type_can_override_the_accrual_percent(customer, products):
    delivery = PurchaseType.objects.get(code="delivery")
    AccrualRate.objects.create(purchase_type=delivery, percent=D("10"))

    quote = checkout_quote(customer.pk, BASKET, on=DAY, purchase_type_id=delivery.pk)

    assert quote.accrual_percent == D("10.00")
    assert quote.accrual_without_spending == D("27.54")  # 275.43 × 10 % = 27.543
    assert checkout_quote(customer.pk, BASKET, on=DAY).accrual_percent == D("3.00")


def test_a_free_line_is_allowed(customer, products):
    quote = checkout_quote(customer.pk, [("4600000000028", "1", "0")], on=DAY)
    assert (quote.subtotal, quote.total, quote.max_spend) == (D("0.00"), D("0.00"), D("0.00"))


# --- the same answer whoever asks ---------------------------------------------------------------


def test_repeated_calls_give_the_same_quote(customer, products):
    account(customer, "50.00")

    first = checkout_quote(customer.pk, BASKET, on=DAY)
    by_id = [(products["nurofen"].pk, "2", "150.50"), *BASKET[1:]]
    again = checkout_quote(customer.pk, by_id, on=DAY, policy=BonusPolicy.load())

    assert again == first
    assert again.as_dict() == first.as_dict()


def test_as_dict_gives_money_as_strings_and_serializes_to_json(customer, products):
    account(customer, "50.00")

    data = checkout_quote(customer.pk, BASKET, on=DAY).as_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["lines"][1] == {
        "product_id": products["mask"].pk,
        "sku": "4600000000028",
        "qty": "0.500",
        "price": "10.05",
        "amount": "5.03",
        "bonus_eligible": True,
    }
    assert {key: data[key] for key in ("subtotal", "discount_amount", "total", "max_spend")} == {
        "subtotal": "706.03",
        "discount_amount": "70.60",
        "total": "635.43",
        "max_spend": "50.00",
    }
    assert data["balance"] == {"available": "50.00", "pending": "0.00", "debt": "0.00"}
    assert data["discount"]["percent"] == "10.00"
    assert data["on"] == "2026-05-15"


def test_the_quote_is_frozen(customer, products):
    quote = checkout_quote(customer.pk, BASKET, on=DAY)
    assert isinstance(quote, Quote)
    with pytest.raises(AttributeError):
        quote.max_spend = D("1000.00")


def test_the_quote_reads_a_fixed_number_of_queries_whatever_the_lines(
    customer, products, django_assert_num_queries
):
    account(customer)
    few = [("4600000000011", "1", "1.00")]
    many = [(sku, "1", "1.00") for sku, _qty, _price in BASKET] * 20
    policy = BonusPolicy.load()

    # The products; the customer's account, lifetime total, personal discounts and purchase
    # months in one statement (four on SQLite; the tiers and thresholds: the process's
    # configuration).
    expected = 2 if connection.vendor == "postgresql" else 5
    checkout_quote(customer.pk, few, on=DAY, policy=policy)  # a connection's first PREPAREs
    with django_assert_num_queries(expected):
        checkout_quote(customer.pk, few, on=DAY, policy=policy)
    with django_assert_num_queries(expected):
        checkout_quote(customer.pk, many, on=DAY, policy=policy)


# --- bad input ----------------------------------------------------------------------------------


def test_an_unknown_sku_or_id_is_refused_naming_the_line(customer, products):
    assert refused(
        customer, [BASKET[0], ("0000000000000", "1", "1.00"), (987654321, "1", "1.00")]
    ) == {
        "lines[1].product": ["No product with SKU 0000000000000."],
        "lines[2].product": ["No product with id 987654321."],
    }


@pytest.mark.parametrize(
    ("qty", "message"),
    [
        ("0", "Must be greater than zero."),
        ("-1", "Must be greater than zero."),
        ("1.2345", "At most three decimal places."),
        ("abc", "Not a number."),
        ("NaN", "Not a number."),
        ("Infinity", "Not a number."),
        ("10000000", "Too large."),
        (1.5, 'Give the quantity as a decimal string, e.g. "1.5".'),
    ],
)
def test_a_bad_quantity_is_refused_naming_the_line_and_field(customer, products, qty, message):
    assert refused(customer, [BASKET[0], ("4600000000028", qty, "1.00")]) == {
        "lines[1].qty": [message]
    }


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("10.005", "At most two decimal places."),
        ("-0.01", "Must not be negative."),
        ("ten", "Not a number."),
        (9.99, 'Give the amount as a decimal string, e.g. "12.50".'),
    ],
)
def test_a_bad_price_is_refused_naming_the_line_and_field(customer, products, price, message):
    assert refused(customer, [("4600000000011", "1", price)]) == {"lines[0].price": [message]}


def test_every_problem_is_reported_at_once(customer, products):
    assert refused(
        customer,
        [("", "0", "1.00"), ("4600000000011", "1", "-5"), ("nope", "1", "1"), ("x", "1")],
    ) == {
        "lines[0].product": ["Give a product id or SKU."],
        "lines[0].qty": ["Must be greater than zero."],
        "lines[1].price": ["Must not be negative."],
        "lines[2].product": ["No product with SKU nope."],
        "lines[3]": ["A line is (product, quantity, price)."],
    }


def test_a_quote_needs_lines_and_a_known_customer(customer, products):
    assert refused(customer, []) == {"lines": ["At least one line."]}
    assert refused(customer, "4600000000011") == {"lines": ["Give a list of lines."]}
    with pytest.raises(ValidationError) as error:
        checkout_quote(987654321, BASKET, on=DAY)
    assert error.value.message_dict == {"customer": ["No such customer."]}
