"""The ledger's daily work: activation of pending accruals, expiry, birthday and welcome grants.

Each job works in chunks of accounts, one transaction per chunk, locking the chunk's accounts
in id order before reading their lots (the rule of `loyalty.ledger`), so a checkout of a
customer waits at most for one chunk. Every job is safe to run again: expiry and grants are
keyed by customer and day or year.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from customers.models import Customer

from .bonus_rules import BonusPolicy
from .ledger import (
    ACCOUNTS,
    CONSUMPTIONS,
    MOVEMENTS,
    Posted,
    _chunks,
    bonus_grant,
    open_books,
    write_books,
)
from .models import BonusAccount, BonusConsumption, BonusMovement, MovementKind

ZERO = Decimal("0.00")
CHUNK = 20000


@dataclass
class JobResult:
    accounts: int = 0
    amount: Decimal = ZERO


def bonus_activate(now: dt.datetime | None = None, chunk: int = CHUNK) -> JobResult:
    """Pending accruals whose day has come become available (paying debts off first)."""
    now = now or timezone.now()
    result = JobResult()
    ids = sorted(
        set(
            BonusMovement.objects.filter(is_pending=True, available_at__lte=now).values_list(
                "customer_id", flat=True
            )
        )
    )
    for part in _chunks(ids, chunk):
        with transaction.atomic():
            books = open_books(part, with_lots=part)
            for book in books.values():
                for lot in book.lots:
                    if lot.pending and lot.available_at is not None and lot.available_at <= now:
                        result.amount += lot.remaining
                        book.activate(lot)
                        result.accounts += 1
            write_books(books.values())
    return result


EXPIRE_SQL = f"""
WITH lots AS (
    SELECT id, customer_id, remaining FROM {MOVEMENTS}
    WHERE customer_id = ANY(%(ids)s) AND remaining > 0 AND NOT is_pending
      AND expires_at <= %(now)s
), sums AS (
    SELECT customer_id, SUM(remaining) AS total FROM lots GROUP BY customer_id
), debits AS (
    INSERT INTO {MOVEMENTS} (customer_id, kind, amount, idempotency_key, created_at, channel,
        reason, is_pending, uncovered, status, campaign_ref)
    SELECT customer_id, 'expiry', -total, 'expiry:' || customer_id || ':' || %(day)s,
        %(now)s, 'system', '', false, 0, '', ''
    FROM sums
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, customer_id, amount
), consumed AS (
    INSERT INTO {CONSUMPTIONS} (debit_id, credit_id, amount, created_at)
    SELECT d.id, l.id, l.remaining, %(now)s FROM lots l JOIN debits d USING (customer_id)
), emptied AS (
    UPDATE {MOVEMENTS} m SET remaining = 0
    FROM lots l JOIN debits d USING (customer_id) WHERE m.id = l.id
), accounts AS (
    UPDATE {ACCOUNTS} a SET balance = a.balance + d.amount, updated_at = %(now)s
    FROM debits d WHERE a.customer_id = d.customer_id
)
SELECT COUNT(*), COALESCE(-SUM(amount), 0) FROM debits
"""


def bonus_expire(
    now: dt.datetime | None = None, chunk: int = CHUNK, connections: int | None = None
) -> JobResult:
    """Every lot whose validity ended loses what is left of it: one expiry movement per
    account and day, recording the lots it took. What was spent is gone from the lots already,
    so it never expires.

    On PostgreSQL the chunks (disjoint sets of accounts) run on `connections` database
    connections at once (settings.BONUS_JOB_CONNECTIONS, default 2), each chunk its own
    transaction, when there is more than one chunk and no transaction is open around the job
    (a worker's connection cannot see an uncommitted outer transaction)."""
    now = now or timezone.now()
    day = timezone.localdate(now).isoformat()
    if connections is None:
        connections = settings.BONUS_JOB_CONNECTIONS
    ids = sorted(
        set(
            BonusMovement.objects.filter(
                remaining__gt=0, is_pending=False, expires_at__lte=now
            ).values_list("customer_id", flat=True)
        )
    )
    parts = list(_chunks(ids, chunk))
    parallel = (
        connection.vendor == "postgresql"
        and connections > 1
        and len(parts) > 1
        and not connection.in_atomic_block
    )
    if parallel:
        with ThreadPoolExecutor(min(connections, len(parts))) as pool:
            done = list(
                pool.map(lambda part: _in_own_connection(_expire_part, part, now, day), parts)
            )
    else:
        done = [_expire_part(part, now, day) for part in parts]
    result = JobResult()
    for accounts, amount in done:
        result.accounts += accounts
        result.amount += amount
    return result


def _in_own_connection(function, *args):
    """Runs `function` in a worker thread, on that thread's own database connection, closed
    when it is done."""
    try:
        return function(*args)
    finally:
        connection.close()


def _expire_part(part: list[int], now: dt.datetime, day: str) -> tuple[int, Decimal]:
    with transaction.atomic():
        if connection.vendor != "postgresql":
            return _expire_generic(part, now, day)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")  # compiling the plan costs more than it saves
            cursor.execute(
                f"SELECT 1 FROM {ACCOUNTS} WHERE customer_id = ANY(%s) "
                "ORDER BY customer_id FOR UPDATE",
                [part],
            )
            cursor.execute(EXPIRE_SQL, {"ids": part, "now": now, "day": day})
            return cursor.fetchone()


def _expire_generic(ids: list[int], now: dt.datetime, day: str) -> tuple[int, Decimal]:
    books = open_books(ids, with_lots=ids)
    accounts, total = 0, ZERO
    for book in books.values():
        key = f"expiry:{book.customer_id}:{day}"
        expired = [
            lot
            for lot in book.lots
            if not lot.pending and lot.remaining > 0 and lot.expires_at <= now
        ]
        if not expired or BonusMovement.objects.filter(idempotency_key=key).exists():
            continue
        amount = sum((lot.remaining for lot in expired), ZERO)
        debit = BonusMovement.objects.create(
            customer_id=book.customer_id,
            kind=MovementKind.EXPIRY,
            amount=-amount,
            idempotency_key=key,
            created_at=now,
            channel="system",
            uncovered=ZERO,
        )
        BonusConsumption.objects.bulk_create(
            [
                BonusConsumption(
                    debit=debit, credit_id=lot.id, amount=lot.remaining, created_at=now
                )
                for lot in expired
            ]
        )
        BonusMovement.objects.filter(pk__in=[lot.id for lot in expired]).update(remaining=0)
        BonusAccount.objects.filter(customer_id=book.customer_id).update(
            balance=book.balance - amount, updated_at=now
        )
        accounts += 1
        total += amount
    return accounts, total


def birthday_customers(day: dt.date) -> Q:
    """Customers whose birthday is `day` (those born on 29 February: on the 28th in other
    years)."""
    q = Q(birth_date__month=day.month, birth_date__day=day.day)
    if day.month == 2 and day.day == 28:
        try:
            dt.date(day.year, 2, 29)
        except ValueError:
            q |= Q(birth_date__month=2, birth_date__day=29)
    return q


def bonus_birthdays(day: dt.date | None = None, chunk: int = CHUNK) -> JobResult:
    """The birthday bonus for everyone whose birthday is today; once per customer and year."""
    day = day or timezone.localdate()
    policy = BonusPolicy.load()
    result = JobResult()
    if policy.birthday_amount <= 0:
        return result
    now = timezone.now()
    available_at, expires_at = policy.lot_dates(now, wait=False)
    ids = sorted(Customer.objects.filter(birthday_customers(day)).values_list("pk", flat=True))
    for part in _chunks(ids, chunk):
        with transaction.atomic():
            books = open_books(part)
            keys = {c: f"birthday:{c}:{day.year}" for c in books}
            done = set(
                BonusMovement.objects.filter(idempotency_key__in=keys.values()).values_list(
                    "idempotency_key", flat=True
                )
            )
            for customer_id, book in books.items():
                if keys[customer_id] in done:
                    continue
                book.credit(
                    MovementKind.BIRTHDAY,
                    policy.birthday_amount,
                    keys[customer_id],
                    now,
                    available_at,
                    expires_at,
                    channel="system",
                )
                result.accounts += 1
                result.amount += policy.birthday_amount
            write_books(books.values())
    return result


def bonus_welcome(customer_id: int, *, channel: str = "", user=None) -> Posted | None:
    """The welcome bonus of a customer who joined the loyalty programme (once per customer;
    None when the rules grant none)."""
    policy = BonusPolicy.load()
    if policy.welcome_amount <= 0:
        return None
    granted = BonusMovement.objects.filter(idempotency_key=f"welcome:{customer_id}").first()
    if granted is not None:  # already welcomed (perhaps with another amount then)
        account = BonusAccount.objects.get(customer_id=granted.customer_id)
        return Posted(
            granted.id,
            granted.kind,
            granted.amount,
            True,
            account.balance,
            account.pending,
            account.debt,
        )
    return bonus_grant(
        customer_id,
        MovementKind.WELCOME,
        policy.welcome_amount,
        key=f"welcome:{customer_id}",
        channel=channel,
        user=user,
        policy=policy,
    )
