"""The bonus ledger: accrual, redemption, reversal, expiry, adjustment, grants, merge, check."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from customers.merge import customer_merge
from customers.models import Purchase
from customers.tests.factories import (
    CustomerFactory,
    ProductFactory,
    PurchaseFactory,
    PurchaseLineFactory,
)
from loyalty.ledger import InsufficientBonus, bonus_adjust, bonus_grant, bonus_redeem
from loyalty.ledger_check import ledger_differences
from loyalty.ledger_jobs import bonus_activate, bonus_birthdays, bonus_expire, bonus_welcome
from loyalty.ledger_purchases import purchase_bonuses_sync
from loyalty.models import (
    BonusAccount,
    BonusConsumption,
    BonusMovement,
    BonusRules,
    MovementKind,
)

pytestmark = pytest.mark.django_db
D = Decimal


def account(customer):
    a = BonusAccount.objects.get(customer=customer)
    return a.balance, a.pending, a.debt


def assert_consistent():
    assert ledger_differences() == []


def order(customer, lines, *, discount="0.00", spent="0.00", when=None, **extra):
    """A completed purchase with `lines` = [(product, qty, price)], its bonuses posted."""
    when = when or timezone.now()
    purchase = PurchaseFactory(
        customer=customer,
        purchased_at=when,
        purchase_date=timezone.localdate(when),
        discount=D(discount),
        bonus_spent=D(spent),
        total=D("0"),
        **extra,
    )
    subtotal = D("0")
    for product, qty, price in lines:
        line = PurchaseLineFactory(purchase=purchase, product=product, qty=D(qty), price=D(price))
        subtotal += line.amount
    purchase.total = subtotal - D(discount)
    purchase.save()
    purchase_bonuses_sync(purchase)
    return purchase


def grant(customer, amount, key=None, **kw):
    return bonus_grant(customer.pk, MovementKind.CAMPAIGN, amount, key=key, **kw)


# -- accrual ------------------------------------------------------------------------------------


def test_first_purchase_accrues_the_newcomer_percent_of_eligible_lines_after_discount():
    customer = CustomerFactory()
    otc = ProductFactory(prescription_only=False)
    rx = ProductFactory(prescription_only=True)
    # Lines 300.00 (eligible) and 100.00 (prescription-only); discount 40.00 spread 30/10.
    purchase = order(customer, [(otc, "1", "300.00"), (rx, "1", "100.00")], discount="40.00")
    accrual = BonusMovement.objects.get(purchase=purchase)
    assert accrual.kind == MovementKind.ACCRUAL
    assert accrual.status == "newcomer"
    assert accrual.accrual_percent == D("3.00")
    assert accrual.amount == D("8.10")  # 3 % of (300 - 30)
    assert account(customer) == (D("8.10"), D("0.00"), D("0.00"))
    assert_consistent()


def test_accrual_base_excludes_bonus_spent_and_rounds_half_up():
    customer = CustomerFactory()
    grant(customer, "100.00")
    product = ProductFactory()
    purchase = order(customer, [(product, "1", "150.50")], spent="45.00")
    accrual = BonusMovement.objects.get(purchase=purchase, kind=MovementKind.ACCRUAL)
    assert accrual.amount == D("3.17")  # 3 % of 105.50 = 3.165 -> 3.17
    redemption = BonusMovement.objects.get(purchase=purchase, kind=MovementKind.REDEMPTION)
    assert redemption.amount == D("-45.00")
    assert account(customer) == (D("58.17"), D("0.00"), D("0.00"))
    assert_consistent()


def test_same_purchase_synced_twice_accrues_once():
    customer = CustomerFactory()
    purchase = order(customer, [(ProductFactory(), "2", "50.00")])
    purchase_bonuses_sync(purchase)
    purchase_bonuses_sync(purchase)
    assert BonusMovement.objects.filter(purchase=purchase).count() == 1
    assert account(customer)[0] == D("3.00")


def test_purchase_type_override_beats_the_status_percent():
    from loyalty.models import AccrualRate

    customer = CustomerFactory()
    purchase = PurchaseFactory.build(customer=customer)
    AccrualRate.objects.create(purchase_type=purchase.purchase_type, status="", percent=D("10"))
    purchase = order(customer, [(ProductFactory(), "1", "100.00")])
    assert BonusMovement.objects.get(purchase=purchase).amount == D("10.00")


def test_a_later_status_change_does_not_rewrite_a_past_accrual():
    customer = CustomerFactory()
    product = ProductFactory()
    purchase = order(customer, [(product, "1", "100.00")])
    rules = BonusRules.objects.get()
    rules.accrual_newcomer = D("50")
    rules.save()
    # A correction of the purchase (one more pack) accrues at the percent first applied.
    PurchaseLineFactory(purchase=purchase, product=product, qty=D("1"), price=D("100.00"))
    purchase_bonuses_sync(purchase)
    amounts = sorted(
        BonusMovement.objects.filter(purchase=purchase).values_list("amount", flat=True)
    )
    assert amounts == [D("3.00"), D("3.00")]


# -- redemption ---------------------------------------------------------------------------------


def test_redemption_consumes_the_soonest_expiring_lots_first():
    customer = CustomerFactory()
    now = timezone.now()
    late = grant(customer, "50.00", key="late", now=now)
    rules = BonusRules.objects.get()
    rules.expiry_days = 30
    rules.save()
    soon = grant(customer, "40.00", key="soon", now=now)
    posted = bonus_redeem(customer.pk, "60.00", key="checkout-1")
    assert (posted.balance, posted.replayed) == (D("30.00"), False)
    taken = dict(
        BonusConsumption.objects.filter(debit_id=posted.movement_id).values_list(
            "credit_id", "amount"
        )
    )
    assert taken == {soon.movement_id: D("40.00"), late.movement_id: D("20.00")}
    assert BonusMovement.objects.get(pk=late.movement_id).remaining == D("30.00")
    assert_consistent()


def test_redemption_over_the_balance_is_refused_with_the_amounts_and_writes_nothing():
    customer = CustomerFactory()
    grant(customer, "10.00")
    with pytest.raises(InsufficientBonus) as refused:
        bonus_redeem(customer.pk, "10.01", key="too-much", field_name="bonus_spent")
    assert "bonus_spent" in refused.value.message_dict
    assert "10.01" in str(refused.value) and "10.00" in str(refused.value)
    assert not BonusMovement.objects.filter(idempotency_key="too-much").exists()
    assert account(customer) == (D("10.00"), D("0.00"), D("0.00"))


def test_a_checkout_between_midnight_and_the_nightly_expiry_spends_no_expired_lot():
    customer = CustomerFactory()
    old = grant(customer, "100.00", key="old", now=timezone.now() - dt.timedelta(days=365))
    grant(customer, "50.00", key="new")
    ends = BonusMovement.objects.get(pk=old.movement_id).expires_at
    just_after = ends + dt.timedelta(minutes=2)  # the old lot ended; bonus_expire has not run
    assert account(customer)[0] == D("150.00")

    with pytest.raises(InsufficientBonus) as refused:
        bonus_redeem(customer.pk, "60.00", key="too-much", now=just_after)
    assert "50.00" in str(refused.value)  # what can be spent, not the stale 150.00
    spent = bonus_redeem(customer.pk, "50.00", key="fits", now=just_after)

    assert spent.balance == D("100.00")  # the expired 100.00 is still to be expired
    assert BonusMovement.objects.get(pk=old.movement_id).remaining == D("100.00")
    assert bonus_expire(now=just_after).amount == D("100.00")
    assert account(customer) == (D("0.00"), D("0.00"), D("0.00"))
    assert_consistent()


def test_redemption_without_an_account_is_refused():
    customer = CustomerFactory()
    with pytest.raises(InsufficientBonus):
        bonus_redeem(customer.pk, "1.00", key="nothing")


def test_redemption_replayed_with_the_same_key_changes_nothing():
    customer = CustomerFactory()
    grant(customer, "100.00")
    first = bonus_redeem(customer.pk, "30.00", key="pos-17-000123")
    again = bonus_redeem(customer.pk, "30.00", key="pos-17-000123")
    assert again.replayed and again.movement_id == first.movement_id
    assert account(customer)[0] == D("70.00")
    with pytest.raises(ValidationError) as reused:
        bonus_redeem(customer.pk, "31.00", key="pos-17-000123")
    assert "idempotency_key" in reused.value.message_dict


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12.345", "two decimal places"),
        ("-5", "greater than zero"),
        ("0", "greater than zero"),
        ("abc", "Not a number"),
        ("NaN", "Not a number"),
        (1.5, "decimal string"),
    ],
)
def test_bad_amounts_are_refused_naming_the_field(value, message):
    customer = CustomerFactory()
    grant(customer, "100.00")
    with pytest.raises(ValidationError) as refused:
        bonus_redeem(customer.pk, value, key="k", field_name="bonus_to_spend")
    assert message in refused.value.message_dict["bonus_to_spend"][0]
    with pytest.raises(ValidationError) as refused:
        grant(customer, value)
    assert "amount" in refused.value.message_dict
    assert account(customer)[0] == D("100.00")


# -- reversals ----------------------------------------------------------------------------------


def test_return_after_partial_redemption_takes_back_the_accrual_and_refunds_the_spend():
    customer = CustomerFactory()
    product = ProductFactory()
    grant(customer, "20.00", key="old")
    purchase = order(customer, [(product, "1", "1000.00")], spent="20.00")
    # Accrued 3 % of 980 = 29.40; then 25.00 of it spent at another checkout.
    assert account(customer)[0] == D("29.40")
    bonus_redeem(customer.pk, "25.00", key="later")
    purchase.status = Purchase.Status.RETURNED
    purchase.save()
    purchase_bonuses_sync(purchase)
    kinds = dict(BonusMovement.objects.filter(purchase=purchase).values_list("kind", "amount"))
    assert kinds[MovementKind.REDEMPTION_REVERSAL] == D("20.00")
    assert kinds[MovementKind.ACCRUAL_REVERSAL] == D("-29.40")
    # 4.40 left of the accrual's lot and the 20.00 refund cover 24.40; 5.00 becomes debt.
    assert account(customer) == (D("0.00"), D("0.00"), D("5.00"))
    assert_consistent()
    # A later accrual pays the debt off first.
    order(customer, [(product, "1", "500.00")])
    assert account(customer) == (D("10.00"), D("0.00"), D("0.00"))  # 15.00 - 5.00
    assert_consistent()


def test_partial_return_reverses_in_proportion():
    customer = CustomerFactory()
    a, b = ProductFactory(), ProductFactory()
    grant(customer, "50.00")
    purchase = order(customer, [(a, "1", "600.00"), (b, "1", "400.00")], spent="50.00")
    assert BonusMovement.objects.get(purchase=purchase, kind="accrual").amount == D("28.50")
    # Line b returned: the till re-exports the purchase with one line and a smaller spend.
    purchase.lines.filter(product=b).delete()
    purchase.total = D("600.00")
    purchase.bonus_spent = D("30.00")
    purchase.save()
    purchase_bonuses_sync(purchase)
    rows = dict(
        BonusMovement.objects.filter(purchase=purchase)
        .exclude(kind__in=["accrual", "redemption"])
        .values_list("kind", "amount")
    )
    # Accrual now 3 % of (600 - 30) = 17.10: 11.40 taken back; 20.00 of the spend refunded.
    assert rows == {"accrual_reversal": D("-11.40"), "redemption_reversal": D("20.00")}
    assert account(customer) == (D("37.10"), D("0.00"), D("0.00"))
    assert_consistent()


def test_cancelled_purchase_posts_nothing_and_cancelling_later_undoes_everything():
    customer = CustomerFactory()
    purchase = order(customer, [(ProductFactory(), "1", "100.00")])
    purchase.status = Purchase.Status.CANCELLED
    purchase.save()
    purchase_bonuses_sync(purchase)
    purchase_bonuses_sync(purchase)
    assert account(customer) == (D("0.00"), D("0.00"), D("0.00"))
    assert BonusMovement.objects.filter(purchase=purchase).count() == 2
    assert_consistent()


def test_adjustment_below_zero_leaves_debt_and_needs_a_reason():
    customer = CustomerFactory()
    grant(customer, "30.00")
    with pytest.raises(ValidationError) as refused:
        bonus_adjust(customer.pk, "-50.00", reason="  ")
    assert "reason" in refused.value.message_dict
    posted = bonus_adjust(customer.pk, "-50.00", reason="Duplicate campaign grant")
    assert (posted.balance, posted.debt) == (D("0.00"), D("20.00"))
    assert BonusMovement.objects.get(pk=posted.movement_id).uncovered == D("20.00")
    with pytest.raises(InsufficientBonus):
        bonus_redeem(customer.pk, "0.01", key="nope")
    bonus_adjust(customer.pk, D("25.00"), reason="Goodwill")
    assert account(customer) == (D("5.00"), D("0.00"), D("0.00"))
    assert_consistent()


# -- expiry, activation, grants -----------------------------------------------------------------


def test_expiry_after_partial_redemption_takes_only_what_is_left():
    customer = CustomerFactory()
    now = timezone.now()
    lot = grant(customer, "100.00", now=now)
    bonus_redeem(customer.pk, "40.00", key="spent")
    expires = BonusMovement.objects.get(pk=lot.movement_id).expires_at
    assert bonus_expire(now=expires - dt.timedelta(seconds=1)).accounts == 0
    result = bonus_expire(now=expires)
    assert (result.accounts, result.amount) == (1, D("60.00"))
    expiry = BonusMovement.objects.get(kind=MovementKind.EXPIRY)
    assert expiry.amount == D("-60.00")
    assert account(customer) == (D("0.00"), D("0.00"), D("0.00"))
    assert bonus_expire(now=expires).accounts == 0  # the same night again: nothing
    assert_consistent()


def test_bonuses_expire_at_the_start_of_the_day_after_the_validity_period():
    customer = CustomerFactory()
    posted_at = timezone.make_aware(dt.datetime(2026, 3, 10, 15, 0))
    lot = grant(customer, "10.00", now=posted_at)
    expires = timezone.localtime(BonusMovement.objects.get(pk=lot.movement_id).expires_at)
    assert expires == timezone.make_aware(dt.datetime(2027, 3, 11, 0, 0))  # 365 days valid


def test_pending_accruals_wait_for_activation_and_then_pay_debt_first():
    rules = BonusRules.objects.get()
    rules.activation_days = 14
    rules.save()
    customer = CustomerFactory()
    bonus_adjust(customer.pk, "-2.00", reason="Correction")
    order(customer, [(ProductFactory(), "1", "100.00")])
    assert account(customer) == (D("0.00"), D("3.00"), D("2.00"))
    with pytest.raises(InsufficientBonus):
        bonus_redeem(customer.pk, "1.00", key="too-early")
    lot = BonusMovement.objects.get(kind=MovementKind.ACCRUAL)
    assert bonus_activate(now=lot.available_at - dt.timedelta(seconds=1)).accounts == 0
    assert bonus_activate(now=lot.available_at).accounts == 1
    assert account(customer) == (D("1.00"), D("0.00"), D("0.00"))
    assert_consistent()


def test_birthday_bonus_once_a_year_and_on_28_february_for_29_february():
    leap = CustomerFactory(birth_date=dt.date(2000, 2, 29))
    other = CustomerFactory(birth_date=dt.date(1990, 2, 28))
    CustomerFactory(birth_date=dt.date(1990, 3, 1))
    result = bonus_birthdays(dt.date(2027, 2, 28))
    assert (result.accounts, result.amount) == (2, D("400.00"))
    assert bonus_birthdays(dt.date(2027, 2, 28)).accounts == 0
    assert account(leap)[0] == account(other)[0] == D("200.00")
    # In a leap year the 29th is the day.
    assert bonus_birthdays(dt.date(2028, 2, 28)).accounts == 1
    assert bonus_birthdays(dt.date(2028, 2, 29)).accounts == 1
    assert_consistent()


def test_welcome_bonus_once():
    customer = CustomerFactory()
    assert bonus_welcome(customer.pk).amount == D("100.00")
    assert bonus_welcome(customer.pk).replayed
    assert account(customer)[0] == D("100.00")


# -- merge and check ----------------------------------------------------------------------------


def test_merge_moves_the_ledger_and_the_balances_add_up_with_debt_paid_off():
    survivor, merged = CustomerFactory(), CustomerFactory()
    bonus_adjust(survivor.pk, "-15.00", reason="Correction")
    grant(merged, "40.00")
    bonus_redeem(merged.pk, "5.00", key="m-1")
    customer_merge(survivor=survivor, merged=merged, reason="test")
    assert not BonusAccount.objects.filter(customer_id=merged.pk).exists()
    assert account(survivor) == (D("20.00"), D("0.00"), D("0.00"))
    assert BonusMovement.objects.filter(customer=survivor).count() == 3
    assert_consistent()


def test_check_bonus_ledger_finds_a_tampered_account():
    customer = CustomerFactory()
    grant(customer, "10.00")
    out = io.StringIO()
    call_command("check_bonus_ledger", stdout=out)
    assert "No differences" in out.getvalue()
    BonusAccount.objects.filter(customer=customer).update(balance=D("11.00"))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("check_bonus_ledger", stdout=out, stderr=err)
    assert f"customer {customer.pk}" in err.getvalue()
