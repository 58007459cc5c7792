"""Bonuses of POS imports: accrual at the purchase's status, redemption checked against the
balance in datetime order, re-exports posting only their difference."""

from decimal import Decimal

import pytest

from customers.models import Customer, ImportIssue, Purchase
from customers.pos_import import pos_file_import
from customers.tests.pos_xml_builders import write_pos_file
from loyalty.ledger_check import ledger_differences
from loyalty.models import BonusAccount, BonusMovement

pytestmark = pytest.mark.django_db
D = Decimal
ITEM = {"sku": "4601234567890", "name": "Нурофен таб. 200 мг №20", "qty": "1", "price": "1000.00"}
ANNA = {"card": "2900000012345", "phone": "+7 (912) 345-67-89"}


def purchase(pid, when, *, customer=ANNA, price="1000.00", **extra):
    return {
        "id": pid,
        "datetime": when,
        "customer": customer,
        "lines": [{**ITEM, "price": price}],
        **extra,
    }


@pytest.fixture
def import_file(tmp_path):
    def run(purchases, name="export.xml"):
        path = tmp_path / name
        write_pos_file(path, "A-017", purchases)
        return pos_file_import(path=path)

    return run


def balance():
    account = BonusAccount.objects.get(customer=Customer.objects.get(card_number=ANNA["card"]))
    return account.balance, account.pending, account.debt


def test_a_file_accrues_and_redeems_in_datetime_order_and_refuses_what_is_not_covered(
    import_file,
):
    run = import_file(
        [
            # Listed first, but at 15:00: spends what the 14:00 purchase earned.
            purchase("2", "2026-11-20T15:00:00+03:00", bonus_spent="30.00"),
            purchase("1", "2026-11-20T14:00:00+03:00"),
            purchase("3", "2026-11-20T16:00:00+03:00", bonus_spent="29.11"),
            purchase(
                "4",
                "2026-11-20T17:00:00+03:00",
                customer={"phone": "8 912 000-00-04"},
                bonus_spent="1.00",
            ),
        ]
    )
    assert (run.created, run.rejected) == (2, 2)
    issues = {i.record_id: (i.field, i.message) for i in ImportIssue.objects.filter(run=run)}
    assert issues["3"] == ("bonus.spent", "Not enough bonuses: 29.11 requested, 29.10 available.")
    assert issues["4"][0] == "bonus.spent"
    assert not Purchase.objects.filter(external_id__in=["3", "4"]).exists()
    assert Customer.objects.count() == 1  # nobody from the refused purchase 4
    # 1: 3 % of 1000 = 30.00; 2: spends 30.00, earns 3 % of 970 = 29.10.
    assert balance() == (D("29.10"), D("0.00"), D("0.00"))
    assert ledger_differences() == []


def test_reimporting_the_same_file_posts_nothing(import_file):
    purchases = [
        purchase("1", "2026-11-20T14:00:00+03:00"),
        purchase("2", "2026-11-20T15:00:00+03:00", bonus_spent="10.00"),
    ]
    import_file(purchases)
    count = BonusMovement.objects.count()
    run = import_file(purchases, name="copy.xml")
    assert run.unchanged == 2
    assert BonusMovement.objects.count() == count


def test_a_returned_purchase_re_exported_reverses_its_accrual_and_refunds_its_spend(
    import_file,
):
    import_file([purchase("1", "2026-11-20T14:00:00+03:00")])
    import_file([purchase("2", "2026-11-21T14:00:00+03:00", bonus_spent="20.00")])
    assert balance() == (D("39.40"), D("0.00"), D("0.00"))  # 30.00 - 20.00 + 29.40
    run = import_file(
        [purchase("2", "2026-11-21T14:00:00+03:00", bonus_spent="20.00", status="returned")],
        name="return.xml",
    )
    assert run.updated == 1
    rows = dict(
        BonusMovement.objects.filter(purchase__external_id="2")
        .exclude(kind__in=["accrual", "redemption"])
        .values_list("kind", "amount")
    )
    assert rows == {"accrual_reversal": D("-29.40"), "redemption_reversal": D("20.00")}
    assert balance() == (D("30.00"), D("0.00"), D("0.00"))
    assert ledger_differences() == []


def test_a_re_exported_purchase_is_checked_only_for_its_additional_spend(import_file):
    import_file([purchase("1", "2026-11-20T14:00:00+03:00")])
    import_file([purchase("2", "2026-11-21T14:00:00+03:00", bonus_spent="30.00")])
    assert balance()[0] == D("29.10")
    # The correction spends 29.10 more (59.10 in all): covered by the balance of 29.10.
    run = import_file(
        [purchase("2", "2026-11-21T14:00:00+03:00", bonus_spent="59.10")], name="fix.xml"
    )
    assert (run.updated, run.rejected) == (1, 0)
    # The extra spend took the whole balance (this purchase's own accrual included); the
    # accrual is now 3 % of (1000 - 59.10) = 28.23, so 0.87 is taken back: nothing is left to
    # take it from, and it becomes debt.
    assert balance() == (D("0.00"), D("0.00"), D("0.87"))
    run = import_file(
        [purchase("2", "2026-11-21T14:00:00+03:00", bonus_spent="59.11")], name="fix2.xml"
    )
    assert run.rejected == 1
    assert Purchase.objects.get(external_id="2").bonus_spent == D("59.10")
    assert ledger_differences() == []


def test_accrual_follows_the_status_on_the_purchase_date(import_file):
    # A purchase in each of the 12 months before: VIP on the 13th month's purchase (7 %).
    months = [f"2025-{m:02d}-10T12:00:00+03:00" for m in range(11, 13)] + [
        f"2026-{m:02d}-10T12:00:00+03:00" for m in range(1, 12)
    ]
    import_file([purchase(str(i), when, price="100.00") for i, when in enumerate(months)])
    percents = list(
        BonusMovement.objects.filter(kind="accrual")
        .order_by("purchase__purchased_at")
        .values_list("status", "accrual_percent")
    )
    assert percents[0] == ("newcomer", D("3.00"))
    assert percents[3] == ("growing", D("5.00"))  # three months in a row before February
    assert percents[-1] == ("vip", D("7.00"))
