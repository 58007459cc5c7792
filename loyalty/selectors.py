"""Reads of the loyalty app for the admin, the API and reports."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Count,
    DateTimeField,
    F,
    Min,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.utils import timezone

from customers.models import Customer

from .discounts import DiscountOutlook, discount_outlook
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


# --- the API's reads -------------------------------------------------------------------------


def _expiring_first(customer_id, before: dt.datetime) -> Subquery:
    """The earliest end of validity among the lots `_expiring_total` adds up."""
    return Subquery(
        BonusMovement.objects.filter(
            customer_id=customer_id, remaining__gt=0, expires_at__lt=before
        )
        .order_by()
        .values("customer_id")
        .annotate(first=Min("expires_at"))
        .values("first")
    )


@dataclass(frozen=True)
class BonusBalance:
    """A customer's bonuses (1 bonus = 1 rouble)."""

    customer_id: int
    available: Decimal
    pending: Decimal
    debt: Decimal
    expiring: Decimal  # unspent bonuses whose validity ends before `expiring_before`
    expiring_first_at: dt.datetime | None  # when the first of them expires
    expiring_before: dt.datetime


def bonus_balance(*, customer_id: int, now: dt.datetime | None = None) -> BonusBalance | None:
    """The account's figures and what expires within EXPIRING_DAYS (the customer page's
    computation), in one query; None when there is no such customer, zeros for a customer the
    ledger never saw."""
    before = (now or timezone.now()) + dt.timedelta(days=EXPIRING_DAYS)
    row = (
        Customer.objects.filter(pk=customer_id)
        .annotate(
            expiring=_expiring_total(OuterRef("pk"), before),
            expiring_first_at=_expiring_first(OuterRef("pk"), before),
        )
        .values_list(
            "bonus_account__balance",
            "bonus_account__pending",
            "bonus_account__debt",
            "expiring",
            "expiring_first_at",
        )
        .first()
    )
    if row is None:
        return None
    zero = Decimal("0.00")
    available, pending, debt, expiring, first_at = row
    return BonusBalance(
        customer_id=customer_id,
        available=available if available is not None else zero,
        pending=pending if pending is not None else zero,
        debt=debt if debt is not None else zero,
        expiring=expiring if expiring is not None else zero,
        expiring_first_at=first_at,
        expiring_before=before,
    )


# What bonus_ledger_rows gives of each movement.
LEDGER_ROW_FIELDS = (
    "id",
    "kind",
    "amount",
    "created_at",
    "purchase_id",
    "available_at",
    "expires_at",
    "remaining",
    "reason",
    "channel",
)


def bonus_ledger_rows(*, customer_id: int) -> QuerySet:
    """A customer's movements as dicts (LEDGER_ROW_FIELDS and `purchase_number`, the purchase's
    number in its source system, joined), unordered: the caller orders and pages them. Read
    through the customer's index."""
    return (
        BonusMovement.objects.filter(customer_id=customer_id)
        .order_by()
        .values(*LEDGER_ROW_FIELDS, purchase_number=F("purchase__external_id"))
    )


@dataclass(frozen=True)
class CustomerLoyalty:
    """A customer's status, figures and scores as of the last whole-base run, and the discount
    and next cumulative tier as of today (read from purchases: every channel's newest purchase
    counts at once)."""

    customer_id: int
    figures: dict | None  # CustomerFigures' columns; None before the customer's first run
    figures_as_of: dt.date | None
    discount: DiscountOutlook


# The CustomerFigures columns customer_loyalty reads.
LOYALTY_FIGURES = (
    "status",
    "status_since",
    "purchase_count",
    "lifetime_total",
    "average_check",
    "frequency",
    "first_purchase",
    "last_purchase",
    "r_score",
    "f_score",
    "m_score",
)


def customer_loyalty(*, customer_id: int, on: dt.date | None = None) -> CustomerLoyalty | None:
    """Status, figures, RFM scores, current discount and next tier of a customer, or None when
    there is no such customer. Five queries whatever the history's length: the customer with
    its figures (one row), the figures' date, and discount_outlook's three."""
    row = (
        Customer.objects.filter(pk=customer_id)
        .values("figures__pk", *(f"figures__{name}" for name in LOYALTY_FIGURES))
        .first()
    )
    if row is None:
        return None
    figures = None
    if row["figures__pk"] is not None:
        figures = {name: row[f"figures__{name}"] for name in LOYALTY_FIGURES}
    return CustomerLoyalty(
        customer_id=customer_id,
        figures=figures,
        figures_as_of=figures_as_of(),
        discount=discount_outlook(customer_id, on),
    )
