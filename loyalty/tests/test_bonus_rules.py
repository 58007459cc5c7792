"""The bonus arithmetic (loyalty.bonus_rules): exact amounts, pure Python; the last tests load
the policy from the database."""

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from django.core.exceptions import ValidationError

from customers.tests.factories import ProductFactory
from loyalty.bonus_rules import BonusPolicy, parse_amount, round_money
from loyalty.models import BonusProductRule, BonusRules

D = Decimal
PLAIN, OTHER, RX = 1, 2, 3  # product ids: RX is excluded from bonuses
DELIVERY, PREORDER = 10, 11  # purchase type ids


def policy(**changes) -> BonusPolicy:
    """The default rules (3/3/5/4/3/7 %, 30 % cap) with product RX excluded."""
    fields = {
        "status_percent": {
            "newcomer": D("3"),
            "one_time": D("3"),
            "growing": D("5"),
            "regular": D("4"),
            "lost": D("3"),
            "vip": D("7"),
        },
        "type_percent": {},
        "excluded_products": frozenset({RX}),
        "max_redeem_share": D("30"),
        "activation_days": 0,
        "expiry_days": 365,
        "welcome_amount": D("100.00"),
        "birthday_amount": D("200.00"),
    }
    return BonusPolicy(**{**fields, **changes})


def lines(*rows: tuple[int, str]) -> list[tuple[int, Decimal]]:
    return [(product, D(amount)) for product, amount in rows]


# --- rounding ---------------------------------------------------------------------------------


def test_money_rounds_half_up_where_bankers_rounding_would_go_down():
    assert round_money(D("0.005")) == D("0.01")
    assert round_money(D("2.345")) == D("2.35")
    assert D("2.345").quantize(D("0.01"), rounding=ROUND_HALF_EVEN) == D("2.34")  # the contrast
    assert round_money(D("2.3449")) == D("2.34")


# --- the eligible amount ----------------------------------------------------------------------


def test_without_discount_the_eligible_amount_is_the_eligible_lines_sum():
    assert policy().eligible_amount(lines((PLAIN, "100.00"), (RX, "50.00")), D("0")) == D("100.00")


def test_the_discount_is_spread_over_the_lines_in_proportion_to_their_amounts():
    # 600 of 1,000 is eligible: it carries 60 % of the 100.00 discount.
    eligible = policy().eligible_amount(lines((PLAIN, "600.00"), (RX, "400.00")), D("100.00"))
    assert eligible == D("540.00")


def test_the_eligible_share_of_the_discount_rounds_half_up():
    # 0.01 × 100 / 200 = 0.005: half-up takes 0.01 (half-even would take nothing).
    eligible = policy().eligible_amount(lines((PLAIN, "100.00"), (RX, "100.00")), D("0.01"))
    assert eligible == D("99.99")
    # 0.05 × 100 / 300 = 0.01666…: 0.02.
    eligible = policy().eligible_amount(lines((PLAIN, "100.00"), (RX, "200.00")), D("0.05"))
    assert eligible == D("99.98")


def test_when_every_line_is_eligible_the_whole_discount_comes_off_unrounded():
    eligible = policy().eligible_amount(lines((PLAIN, "100.00"), (OTHER, "33.33")), D("13.33"))
    assert eligible == D("120.00")


def test_excluded_lines_alone_leave_nothing_eligible_whatever_the_discount():
    assert policy().eligible_amount(lines((RX, "500.00"), (RX, "1.00")), D("50.00")) == D("0.00")


def test_the_eligible_amount_never_goes_below_zero():
    assert policy().eligible_amount(lines((PLAIN, "10.00")), D("25.00")) == D("0.00")


def test_without_exclusions_prescription_products_count_like_any_other():
    free = policy(excluded_products=frozenset())
    assert free.eligible_amount(lines((PLAIN, "600.00"), (RX, "400.00")), D("100.00")) == D(
        "900.00"
    )


# --- the redemption cap -----------------------------------------------------------------------


def test_bonuses_may_pay_at_most_the_share_of_the_eligible_amount():
    assert policy().max_spend(D("540.00")) == D("162.00")
    assert policy().max_spend(D("275.43")) == D("82.63")  # 82.629
    assert policy().max_spend(D("0.00")) == D("0.00")


def test_the_cap_rounds_half_up():
    # 0.15 × 30 % = 0.045: 0.05 (half-even: 0.04).
    assert policy().max_spend(D("0.15")) == D("0.05")


def test_the_cap_follows_the_rules_share():
    assert policy(max_redeem_share=D("50")).max_spend(D("99.99")) == D("50.00")  # 49.995
    assert policy(max_redeem_share=D("0")).max_spend(D("1000.00")) == D("0.00")
    assert policy(max_redeem_share=D("100")).max_spend(D("12.34")) == D("12.34")


# --- the accrual ------------------------------------------------------------------------------


def test_the_accrual_is_the_percent_of_the_eligible_amount_minus_the_bonuses_spent():
    assert BonusPolicy.accrual(D("540.00"), D("162.00"), D("5")) == D("18.90")
    assert BonusPolicy.accrual(D("540.00"), D("0.00"), D("7")) == D("37.80")


def test_the_accrual_rounds_half_up():
    # 0.50 × 5 % = 0.025: 0.03 (half-even: 0.02).
    assert BonusPolicy.accrual(D("0.50"), D("0"), D("5")) == D("0.03")
    assert BonusPolicy.accrual(D("275.43"), D("82.63"), D("3")) == D("5.78")  # 5.784


def test_spending_more_than_the_eligible_amount_earns_nothing():
    assert BonusPolicy.accrual(D("100.00"), D("150.00"), D("5")) == D("0.00")


def test_the_percent_is_the_status_one_unless_the_purchase_type_overrides_it():
    rules = policy(
        type_percent={
            (DELIVERY, ""): D("1"),
            (DELIVERY, "vip"): D("10"),
            (PREORDER, "lost"): D("6"),
        }
    )
    assert rules.percent("growing") == D("5")
    assert rules.percent("vip", DELIVERY) == D("10")  # type and status
    assert rules.percent("growing", DELIVERY) == D("1")  # type, every status
    assert rules.percent("growing", PREORDER) == D("5")  # no rule for this status
    assert rules.percent("lost", PREORDER) == D("6")
    assert rules.percent("vip", 999) == D("7")  # a type without overrides


def test_a_first_purchase_accrues_at_the_newcomer_percent():
    rules = policy(status_percent={**policy().status_percent, "newcomer": D("2.5")})
    assert rules.percent(None) == D("2.5")
    assert rules.percent("") == D("2.5")


# --- amounts from input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.50", D("12.50")),
        ("12.5", D("12.50")),
        (" 7 ", D("7.00")),
        (7, D("7.00")),
        (D("0.01"), D("0.01")),
        (D("1E+2"), D("100.00")),
        ("999999999999.99", D("999999999999.99")),
    ],
)
def test_an_amount_with_at_most_two_decimals_is_accepted(value, expected):
    amount = parse_amount(value, "amount")
    assert amount == expected
    assert amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12.345", "At most two decimal places."),
        (D("0.001"), "At most two decimal places."),
        ("-1", "Must be greater than zero."),
        ("0", "Must be greater than zero."),
        ("abc", "Not a number."),
        ("", "Not a number."),
        (None, "Not a number."),
        ("NaN", "Not a number."),
        (D("NaN"), "Not a number."),
        ("Infinity", "Not a number."),
        ("-Infinity", "Not a number."),
        ("1000000000000.00", "Too large."),
        (12.5, 'Give the amount as a decimal string, e.g. "12.50".'),
        (float("nan"), 'Give the amount as a decimal string, e.g. "12.50".'),
        (True, 'Give the amount as a decimal string, e.g. "12.50".'),
    ],
)
def test_a_bad_amount_is_refused_naming_the_field(value, message):
    with pytest.raises(ValidationError) as refused:
        parse_amount(value, "bonus_spent")
    assert refused.value.message_dict == {"bonus_spent": [message]}


def test_zero_is_accepted_only_when_allowed_and_negatives_never():
    assert parse_amount("0", "price", allow_zero=True) == D("0.00")
    with pytest.raises(ValidationError) as refused:
        parse_amount("-0.01", "price", allow_zero=True)
    assert refused.value.message_dict == {"price": ["Must not be negative."]}


# --- the policy from the database -------------------------------------------------------------


@pytest.mark.django_db
def test_the_loaded_policy_excludes_prescription_products_and_applies_product_rules():
    plain, rx = ProductFactory(), ProductFactory(prescription_only=True)
    rx_allowed = ProductFactory(prescription_only=True)
    plain_excluded = ProductFactory()
    BonusProductRule.objects.create(product=rx_allowed, excluded=False)
    BonusProductRule.objects.create(product=plain_excluded, excluded=True)

    loaded = BonusPolicy.load()

    assert loaded.excluded_products == {rx.pk, plain_excluded.pk}
    assert plain.pk not in loaded.excluded_products
    assert (loaded.max_redeem_share, loaded.expiry_days) == (D("30.00"), 365)
    assert loaded.percent("vip") == D("7.00")


@pytest.mark.django_db
def test_with_the_prescription_rule_off_only_product_rules_exclude():
    rx, plain_excluded = ProductFactory(prescription_only=True), ProductFactory()
    BonusProductRule.objects.create(product=plain_excluded, excluded=True)
    BonusRules.objects.filter(pk=1).update(exclude_prescription_only=False)

    assert BonusPolicy.load().excluded_products == {plain_excluded.pk}
    assert rx.pk not in BonusPolicy.load().excluded_products
