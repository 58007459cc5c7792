"""The ledger under real concurrency: parallel PostgreSQL connections, one thread each."""

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.utils import timezone

from customers.tests.factories import (
    CustomerFactory,
    ProductFactory,
    PurchaseFactory,
    PurchaseLineFactory,
)
from loyalty.ledger import InsufficientBonus, bonus_grant, bonus_redeem
from loyalty.ledger_check import ledger_differences
from loyalty.ledger_jobs import bonus_expire
from loyalty.ledger_purchases import purchase_bonuses_sync
from loyalty.models import BonusAccount, BonusMovement, BonusRules, MovementKind

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent transactions"),
]
D = Decimal


@pytest.fixture(autouse=True)
def _reference_data(django_db_setup):
    # Transactional tests flush the migration's rows: the rules row is recreated.
    BonusRules.objects.get_or_create(pk=1)


def in_parallel(target, args_list):
    """Runs target(*args) in one thread per args, all released at once; returns results."""
    barrier = threading.Barrier(len(args_list), timeout=30)
    results: list = [None] * len(args_list)

    def run(i, args):
        try:
            barrier.wait()
            results[i] = target(*args)
        except Exception as error:
            results[i] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_fifty_concurrent_redemptions_never_overdraw():
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "1000.00", key="seed")
    results = in_parallel(
        lambda i: bonus_redeem(customer.pk, "30.00", key=f"checkout-{i}"),
        [(i,) for i in range(50)],
    )
    done = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(done) == 33 and len(refused) == 17
    assert all(isinstance(r, InsufficientBonus) for r in refused), refused
    assert all("Not enough bonuses" in str(r) for r in refused)
    assert BonusAccount.objects.get(customer=customer).balance == D("10.00")
    assert BonusMovement.objects.filter(kind=MovementKind.REDEMPTION).count() == 33
    assert ledger_differences() == []


def test_the_same_redemption_delivered_concurrently_is_posted_once():
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "100.00", key="seed")
    results = in_parallel(
        lambda: bonus_redeem(customer.pk, "60.00", key="pos-A-17:000123"), [()] * 8
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(not r.replayed for r in results) == 1
    assert BonusAccount.objects.get(customer=customer).balance == D("40.00")
    assert ledger_differences() == []


def test_the_same_purchase_delivered_twice_concurrently_accrues_once():
    customer = CustomerFactory()
    bonus_grant(customer.pk, MovementKind.CAMPAIGN, "50.00", key="seed")
    purchase = PurchaseFactory(customer=customer, bonus_spent=D("20.00"), total=D("500.00"))
    PurchaseLineFactory(purchase=purchase, product=ProductFactory(), qty=1, price=D("500.00"))
    results = in_parallel(lambda: purchase_bonuses_sync(purchase), [()] * 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    rows = dict(BonusMovement.objects.filter(purchase=purchase).values_list("kind", "amount"))
    assert rows == {"redemption": D("-20.00"), "accrual": D("14.40")}
    assert BonusMovement.objects.filter(purchase=purchase).count() == 2
    assert BonusAccount.objects.get(customer=customer).balance == D("44.40")
    assert ledger_differences() == []


def test_expiry_running_during_redemptions_keeps_the_ledger_exact():
    customers = CustomerFactory.create_batch(20)
    now = timezone.now()
    for c in customers:
        bonus_grant(c.pk, MovementKind.CAMPAIGN, "100.00", key=f"old-{c.pk}", now=now)
    expires = BonusMovement.objects.filter(kind=MovementKind.CAMPAIGN).first().expires_at
    later = expires - timezone.timedelta(days=1)
    for c in customers:
        bonus_grant(c.pk, MovementKind.CAMPAIGN, "50.00", key=f"new-{c.pk}", now=later)

    def redeem(c):
        return [bonus_redeem(c.pk, "10.00", key=f"r-{c.pk}-{i}") for i in range(5)]

    results = in_parallel(
        lambda job: bonus_expire(now=expires, chunk=3) if job is None else redeem(job),
        [(None,)] + [(c,) for c in customers],
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    # Redemptions take the soonest-expiring lot first, so whatever ran first, the expiry took
    # what the redemptions before it left of the old lot, and nothing of the new one.
    for c in customers:
        expired = -sum(
            BonusMovement.objects.filter(customer=c, kind=MovementKind.EXPIRY).values_list(
                "amount", flat=True
            ),
            D("0"),
        )
        assert D("50.00") <= expired <= D("100.00")
        assert BonusAccount.objects.get(customer=c).balance == D("100.00") - expired
        new = BonusMovement.objects.get(idempotency_key=f"new-{c.pk}")
        assert new.remaining == D("100.00") - expired  # 10.00 per redemption after expiry
    assert ledger_differences() == []


def test_expiry_on_several_connections_expires_each_account_once():
    customers = CustomerFactory.create_batch(9)
    now = timezone.now()
    for i, c in enumerate(customers, start=1):
        bonus_grant(c.pk, MovementKind.CAMPAIGN, f"{i}.25", key=f"old-{c.pk}", now=now)
    bonus_redeem(customers[0].pk, "0.25", key="spent-first")
    expires = BonusMovement.objects.filter(kind=MovementKind.CAMPAIGN).first().expires_at

    result = bonus_expire(now=expires, chunk=2, connections=3)  # five chunks, three at a time

    assert result.accounts == 9
    assert result.amount == sum(D(f"{i}.25") for i in range(1, 10)) - D("0.25")
    assert set(BonusAccount.objects.values_list("balance", flat=True)) == {D("0.00")}
    assert BonusMovement.objects.filter(kind=MovementKind.EXPIRY).count() == 9
    again = bonus_expire(now=expires, chunk=2, connections=3)
    assert (again.accounts, again.amount) == (0, D("0"))
    assert ledger_differences() == []


def test_an_account_created_by_a_concurrent_transaction_is_locked_and_returned():
    """open_books' one statement creates the missing accounts and locks the rest; an account
    another transaction creates while the insert waits (committed after the statement's
    snapshot) is locked by a second statement, not left out."""
    from django.db import transaction

    from loyalty.ledger import open_books

    customer = CustomerFactory()
    created, second_done = threading.Event(), threading.Event()
    outcome = {}

    def first():
        try:
            with transaction.atomic():
                open_books([customer.pk])  # creates the account, holds its lock
                created.set()
                second_done.wait(0.5)  # the second's insert is waiting on this row now
        finally:
            connections.close_all()

    def second():
        try:
            created.wait(10)
            with transaction.atomic():
                books = open_books([customer.pk])
                outcome["balance"] = books[customer.pk].balance
                with connection.cursor() as cursor:  # this transaction holds the row's lock
                    cursor.execute(
                        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                        "WHERE l.pid = pg_backend_pid() AND c.relname = 'loyalty_bonusaccount' "
                        "AND l.mode = 'RowShareLock'"
                    )
                    outcome["row_share"] = cursor.fetchone()[0]
        except Exception as error:
            outcome["error"] = error
        finally:
            second_done.set()
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert "error" not in outcome, outcome
    assert outcome["balance"] == D("0.00")
    assert outcome["row_share"] == 1
    assert BonusAccount.objects.filter(customer=customer).count() == 1
