"""Bonuses for customers whose purchases were stored before the ledger knew them: the demo
data, purchases migrated from the chain's old system.

The customers with purchases and no bonus account yet are taken in chunks; each one's whole
history goes through `PurchaseBonuses` in datetime order, as the POS import would have posted
it: accruals at the status of each purchase's date, spends checked against the balance. A
purchase whose spend the balance does not cover is left without bonuses and counted. Every
customer taken gets an account, so running it again posts nothing new.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef

from customers.models import Purchase, PurchaseLine
from customers.purchase_hooks import PurchaseRecord, natural_key

from .bonus_rules import BonusPolicy
from .ledger_purchases import PurchaseBonuses
from .models import BonusAccount


@dataclass
class BackfillResult:
    purchases: int = 0
    movements: int = 0
    refused: int = 0
    customers: int = 0


def post_purchase_bonuses(*, chunk: int = 2000, channel: str = "backfill") -> BackfillResult:
    result = BackfillResult()
    policy = BonusPolicy.load()
    todo = (
        Purchase.objects.filter(customer__isnull=False)
        .exclude(Exists(BonusAccount.objects.filter(customer_id=OuterRef("customer_id"))))
        .order_by()
    )
    customer_ids = sorted(set(todo.values_list("customer_id", flat=True)))
    for start in range(0, len(customer_ids), chunk):
        part = customer_ids[start : start + chunk]
        purchases = list(
            todo.filter(customer_id__in=part).values(
                "pk",
                "source",
                "store_id",
                "external_id",
                "customer_id",
                "status",
                "purchased_at",
                "purchase_date",
                "purchase_type_id",
                "discount",
                "bonus_spent",
            )
        )
        lines = defaultdict(list)
        for purchase_id, product_id, amount in PurchaseLine.objects.filter(
            purchase_id__in=[p["pk"] for p in purchases]
        ).values_list("purchase_id", "product_id", "amount"):
            lines[purchase_id].append((product_id, amount))
        records = [
            PurchaseRecord(
                ref=p["pk"],
                natural_key=natural_key(p["source"], p["store_id"], p["external_id"]),
                customer_id=p["customer_id"],
                status=p["status"],
                purchased_at=p["purchased_at"],
                purchase_date=p["purchase_date"],
                purchase_type_id=p["purchase_type_id"],
                lines=lines[p["pk"]],
                discount=p["discount"],
                spent=p["bonus_spent"],
                purchase_id=p["pk"],
                is_new=True,  # no account: nothing was ever posted for this customer
            )
            for p in purchases
        ]
        with transaction.atomic():
            batch = PurchaseBonuses(policy=policy, channel=channel)
            batch.apply(records)
            batch.write()
        result.customers += len(part)
        result.purchases += len(records)
        result.refused += len(batch.rejected)
        result.movements += sum(len(o.movements) for o in batch.outcomes.values())
    return result
