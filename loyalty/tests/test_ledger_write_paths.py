"""`write_books` writes a few rows with plain INSERT / UPDATE ... VALUES and many with COPY (and
temporary tables): both paths must leave the same ledger. Each test runs once per path, the
threshold moved so that every write of the scenario takes that path."""

from decimal import Decimal

import pytest
from django.db import connection

from customers.models import Customer
from customers.pos_import import pos_file_import
from customers.tests.pos_xml_builders import write_pos_file
from loyalty import ledger
from loyalty.ledger_check import ledger_differences
from loyalty.models import BonusAccount, BonusConsumption, BonusMovement

pytestmark = pytest.mark.django_db
D = Decimal
ITEM = {"sku": "4601234567890", "name": "Нурофен таб. 200 мг №20", "qty": "1", "price": "1000.00"}
ANNA = {"card": "2900000012345", "phone": "+7 (912) 345-67-89"}


@pytest.fixture(params=["plain statements", "copy"])
def write_path(request, monkeypatch):
    if request.param == "copy" and connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    monkeypatch.setattr(ledger, "SMALL_WRITE", 10**9 if request.param == "plain statements" else 1)
    return request.param


def purchase(pid, when, **extra):
    return {"id": pid, "datetime": when, "customer": ANNA, "lines": [ITEM], **extra}


def import_file(tmp_path, name, purchases):
    path = tmp_path / name
    write_pos_file(path, "A-017", purchases)
    return pos_file_import(path=path)


def balance():
    account = BonusAccount.objects.get(customer=Customer.objects.get(card_number=ANNA["card"]))
    return account.balance, account.pending, account.debt


def test_accrual_redemption_debt_and_its_payoff_are_written_alike_by_both_paths(
    tmp_path, write_path
):
    import_file(tmp_path, "1.xml", [purchase("1", "2026-11-20T14:00:00+03:00")])
    import_file(
        tmp_path, "2.xml", [purchase("2", "2026-11-21T14:00:00+03:00", bonus_spent="30.00")]
    )
    # 1 earned 30.00; 2 spent them (its lot updated) and earned 3 % of 970 = 29.10.
    assert balance() == (D("29.10"), D("0.00"), D("0.00"))
    # The correction spends 29.10 more and earns 0.87 less: taken back from nothing, debt.
    run = import_file(
        tmp_path, "fix.xml", [purchase("2", "2026-11-21T14:00:00+03:00", bonus_spent="59.10")]
    )
    assert (run.updated, run.rejected) == (1, 0)
    assert balance() == (D("0.00"), D("0.00"), D("0.87"))
    debt = BonusMovement.objects.get(kind="accrual_reversal")
    assert (debt.amount, debt.uncovered) == (D("-0.87"), D("0.87"))

    # A later accrual pays the debt off first (the stored debt row updated).
    import_file(tmp_path, "3.xml", [purchase("3", "2026-11-22T14:00:00+03:00")])
    accrual = BonusMovement.objects.get(purchase__external_id="3", kind="accrual")
    assert accrual.amount == D("1000.00") * accrual.accrual_percent / 100
    debt.refresh_from_db()
    assert debt.uncovered == D("0.00")
    assert balance() == (accrual.amount - D("0.87"), D("0.00"), D("0.00"))
    assert accrual.remaining == accrual.amount - D("0.87")
    assert sorted(
        BonusConsumption.objects.values_list("debit__kind", "credit__kind", "amount")
    ) == [
        ("accrual_reversal", "accrual", D("0.87")),
        ("redemption", "accrual", D("29.10")),
        ("redemption", "accrual", D("30.00")),
    ]
    assert ledger_differences() == []


def test_a_grant_is_written_by_both_paths_with_its_id(write_path):
    from customers.tests.factories import CustomerFactory
    from loyalty.ledger import bonus_grant

    customer = CustomerFactory()
    posted = bonus_grant(customer.pk, "welcome", "100.00", key="welcome:1")
    movement = BonusMovement.objects.get(pk=posted.movement_id)
    assert (movement.idempotency_key, movement.amount, movement.remaining) == (
        "welcome:1",
        D("100.00"),
        D("100.00"),
    )
    assert (posted.balance, posted.replayed) == (D("100.00"), False)
    assert bonus_grant(customer.pk, "welcome", "100.00", key="welcome:1").replayed
    assert BonusAccount.objects.get(customer=customer).balance == D("100.00")
    assert ledger_differences() == []


def test_a_spend_of_bonuses_earned_in_the_same_write_names_both_new_rows(tmp_path, write_path):
    # One file, one write: 1 earns 30.00, 2 spends them (a consumption between two new rows).
    run = import_file(
        tmp_path,
        "both.xml",
        [
            purchase("1", "2026-11-20T14:00:00+03:00"),
            purchase("2", "2026-11-21T14:00:00+03:00", bonus_spent="30.00"),
        ],
    )
    assert (run.created, run.rejected) == (2, 0)
    consumption = BonusConsumption.objects.get()
    assert (consumption.debit.purchase.external_id, consumption.debit.kind) == ("2", "redemption")
    assert (consumption.credit.purchase.external_id, consumption.credit.kind) == ("1", "accrual")
    assert consumption.amount == D("30.00")
    assert balance() == (D("29.10"), D("0.00"), D("0.00"))
    assert ledger_differences() == []
