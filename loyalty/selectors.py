"""Reads of the loyalty app for the admin, the API and reports."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Count,
    DateTimeField,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.utils import timezone

from customers.models import Customer

from .models import BonusAccount, BonusMovement, CustomerFigures, StatusChange
from .recompute.common import stored_as_of


def figures_as_of() -> dt.date | None:
    """The date every stored status and figure holds for (the last whole-base run's), or None
    before the first one."""
    return stored_as_of()


def status_counts() -> dict[str, int]:
    """Customers per stored status (one GROUP BY over the figures table); customers without a
    completed purchase have no row and are not counted here."""
    return dict(
        CustomerFigures.objects.order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )


def status_history(*, customer_id: int, include_superseded: bool = False):
    """A customer's status changes, newest first (those in effect unless asked otherwise)."""
    changes = StatusChange.objects.filter(customer_id=customer_id)
    if not include_superseded:
        changes = changes.filter(superseded_at__isnull=True)
    return changes.order_by("-effective_date", "-id")


# The customer page prefetches this many of the newest movements: its timeline's length.
NEWEST_MOVEMENTS = 100


def _movements_newest_first():
    return BonusMovement.objects.select_related("purchase", "created_by").order_by(
        "-created_at", "-id"
    )


def newest_movements_prefetch() -> Prefetch:
    """For a customer queryset: the newest NEWEST_MOVEMENTS movements of each customer (purchase
    and poster joined) in `customer.newest_bonus_movements`, which newest_bonus_movements reads
    instead of querying again."""
    return Prefetch(
        "bonus_movements",
        queryset=_movements_newest_first()[:NEWEST_MOVEMENTS],
        to_attr="newest_bonus_movements",
    )


def newest_bonus_movements(customer: Customer, limit: int) -> list[BonusMovement]:
    """The customer's newest `limit` movements, newest first, purchase and poster joined: from
    the prefetch when the customer was loaded with one, else one query."""
    prefetched = getattr(customer, "newest_bonus_movements", None)
    if prefetched is not None and limit <= NEWEST_MOVEMENTS:
        return prefetched[:limit]
    return list(_movements_newest_first().filter(customer=customer)[:limit])


# The customer page shows what expires within this many days.
EXPIRING_DAYS = 30


def _expiring_total(customer_id, before: dt.datetime) -> Subquery:
    """What is left of the customer's lots whose validity ends before `before` (read through the
    customer's index: one customer's movements)."""
    return Subquery(
        BonusMovement.objects.filter(
            customer_id=customer_id, remaining__gt=0, expires_at__lt=before
        )
        .order_by()
        .values("customer_id")
        .annotate(total=Sum("remaining"))
        .values("total")
    )


def with_bonus_overview(customers: QuerySet, *, now: dt.datetime | None = None) -> QuerySet:
    """Customers loaded for bonus_overview, which then runs no query: the account joined, what
    expires within EXPIRING_DAYS in the same query, the newest movements prefetched (one more)."""
    before = (now or timezone.now()) + dt.timedelta(days=EXPIRING_DAYS)
    return (
        customers.select_related("bonus_account")
        .annotate(
            bonus_expiring=_expiring_total(OuterRef("pk"), before),
            bonus_expiring_before=Value(before, output_field=DateTimeField()),
        )
        .prefetch_related(newest_movements_prefetch())
    )


@dataclass(frozen=True)
class BonusOverview:
    """A customer's bonus account as the customer page shows it."""

    available: Decimal
    pending: Decimal
    debt: Decimal
    expiring: Decimal  # unspent bonuses whose validity ends before `expiring_before`
    expiring_before: dt.datetime
    movements: list[BonusMovement]  # the newest, purchase and poster joined


def bonus_overview(
    *, customer: Customer, now: dt.datetime | None = None, movements: int = 20
) -> BonusOverview:
    """The account's figures, what expires within EXPIRING_DAYS and the newest `movements`
    movements, whatever the length of the ledger: no query for a customer loaded through
    with_bonus_overview, else two at most."""
    zero = Decimal("0.00")
    if hasattr(customer, "bonus_expiring"):
        # The reverse one-to-one was joined: None (no query) when there is no account.
        account = getattr(customer, "bonus_account", None)
        figures = (account.balance, account.pending, account.debt) if account else None
        expiring, before = customer.bonus_expiring, customer.bonus_expiring_before
    else:
        before = (now or timezone.now()) + dt.timedelta(days=EXPIRING_DAYS)
        row = (
            BonusAccount.objects.filter(customer_id=customer.pk)
            .annotate(expiring=_expiring_total(OuterRef("customer_id"), before))
            .values_list("balance", "pending", "debt", "expiring")
            .first()
        )
        figures, expiring = (row[:3], row[3]) if row else (None, None)
    # No account: nothing was ever posted for the customer.
    available, pending, debt = figures or (zero, zero, zero)
    return BonusOverview(
        available=available,
        pending=pending,
        debt=debt,
        expiring=expiring or zero,
        expiring_before=before,
        movements=newest_bonus_movements(customer, movements) if movements else [],
    )
