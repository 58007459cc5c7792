"""Reading orders and purchases for the API: one order with its lines, a customer's orders from
every channel, and what the ledger holds for each (bonuses spent and accrued)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Prefetch, Q, QuerySet, Sum

from customers.models import Customer, Purchase, PurchaseLine

from .models import BonusAccount, BonusMovement, MovementKind

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class OrderBonuses:
    spent: Decimal  # redeemed and not refunded (a placed order's held spend included)
    accrued: Decimal  # accrued and not reversed


@dataclass(frozen=True)
class Balance:
    available: Decimal
    pending: Decimal
    debt: Decimal


def orders_with_lines(queryset: QuerySet[Purchase] | None = None) -> QuerySet[Purchase]:
    """Purchases with their store, type and lines (and the lines' products) in three queries."""
    queryset = Purchase.objects.all() if queryset is None else queryset
    return queryset.select_related("store", "purchase_type").prefetch_related(
        Prefetch("lines", queryset=PurchaseLine.objects.select_related("product").order_by("id"))
    )


def order_get(*, order_id: int) -> Purchase | None:
    return orders_with_lines(Purchase.objects.filter(pk=order_id)).first()


def customer_exists(*, customer_id: int) -> bool:
    return Customer.objects.filter(pk=customer_id).exists()


def customer_orders(
    *, customer_id: int, status: str | None = None, source: str | None = None
) -> QuerySet[Purchase]:
    """The customer's purchases from every channel (orders and till sales), newest first."""
    rows = Purchase.objects.filter(customer_id=customer_id)
    if status:
        rows = rows.filter(status=status)
    if source:
        rows = rows.filter(source=source)
    return orders_with_lines(rows).order_by("-purchased_at", "-id")


def order_bonuses(purchase_ids: Iterable[int]) -> dict[int, OrderBonuses]:
    """What the ledger holds for each purchase, in one query (zeros for purchases it never saw)."""
    ids = list(purchase_ids)
    found = {}
    if ids:
        rows = (
            BonusMovement.objects.filter(purchase_id__in=ids)
            .values("purchase_id")
            .annotate(
                redeemed=Sum(
                    "amount",
                    filter=Q(kind__in=[MovementKind.REDEMPTION, MovementKind.REDEMPTION_REVERSAL]),
                ),
                accrued=Sum(
                    "amount",
                    filter=Q(kind__in=[MovementKind.ACCRUAL, MovementKind.ACCRUAL_REVERSAL]),
                ),
            )
            .order_by()
        )
        for row in rows:
            found[row["purchase_id"]] = OrderBonuses(
                spent=money(-(row["redeemed"] or ZERO)), accrued=money(row["accrued"] or ZERO)
            )
    empty = OrderBonuses(spent=ZERO, accrued=ZERO)
    return {pk: found.get(pk, empty) for pk in ids}


def account_balance(*, customer_id: int | None) -> Balance:
    """The customer's bonus account (zeros for a customer the ledger never saw, or none)."""
    row = None
    if customer_id is not None:
        row = (
            BonusAccount.objects.filter(customer_id=customer_id)
            .values_list("balance", "pending", "debt")
            .first()
        )
    if row is None:
        return Balance(available=ZERO, pending=ZERO, debt=ZERO)
    return Balance(*(money(value) for value in row))


def money(value: Decimal) -> Decimal:
    """Two places, as the API gives money."""
    # SQLite sums come back as floats' Decimals: two places, as PostgreSQL gives them.
    return Decimal(value).quantize(Decimal("0.01")) + ZERO
