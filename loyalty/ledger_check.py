"""Verifies every account against its ledger (`manage.py check_bonus_ledger`).

Sums are rounded to kopecks before comparing: exact on PostgreSQL (numeric), and SQLite (the
embedded demo database) adds decimals as floating point."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from .ledger import ACCOUNTS, CONSUMPTIONS, MOVEMENTS


@dataclass(frozen=True)
class Difference:
    customer_id: int | None
    movement_id: int | None
    problem: str


CHECKS = [
    (
        "a credit's unspent part is not its amount minus what debits took from it",
        f"""
        SELECT m.customer_id, m.id FROM {MOVEMENTS} m
        LEFT JOIN (SELECT credit_id, SUM(amount) AS taken FROM {CONSUMPTIONS}
                   GROUP BY credit_id) c ON c.credit_id = m.id
        WHERE m.amount > 0 AND m.remaining <> ROUND(m.amount - COALESCE(c.taken, 0), 2)
        """,
    ),
    (
        "a debit's uncovered part is not its amount minus what it took from credits",
        f"""
        SELECT m.customer_id, m.id FROM {MOVEMENTS} m
        LEFT JOIN (SELECT debit_id, SUM(amount) AS taken FROM {CONSUMPTIONS}
                   GROUP BY debit_id) c ON c.debit_id = m.id
        WHERE m.amount < 0 AND m.uncovered <> ROUND(-m.amount - COALESCE(c.taken, 0), 2)
        """,
    ),
    (
        "a redemption or expiry is not fully covered (overdrawn)",
        f"""
        SELECT customer_id, id FROM {MOVEMENTS}
        WHERE kind IN ('redemption', 'expiry') AND uncovered <> 0
        """,
    ),
    (
        "a consumption links two movements of different customers or the wrong signs",
        f"""
        SELECT d.customer_id, d.id FROM {CONSUMPTIONS} c
        JOIN {MOVEMENTS} d ON d.id = c.debit_id JOIN {MOVEMENTS} k ON k.id = c.credit_id
        WHERE d.customer_id <> k.customer_id OR d.amount >= 0 OR k.amount <= 0
        """,
    ),
    (
        "the account's available, pending or debt differs from its ledger",
        f"""
        SELECT a.customer_id, NULL FROM {ACCOUNTS} a
        LEFT JOIN (
            SELECT customer_id,
                SUM(CASE WHEN amount > 0 AND NOT is_pending THEN remaining ELSE 0 END) AS available,
                SUM(CASE WHEN amount > 0 AND is_pending THEN remaining ELSE 0 END) AS pending,
                SUM(CASE WHEN amount < 0 THEN uncovered ELSE 0 END) AS debt,
                SUM(amount) AS total
            FROM {MOVEMENTS} GROUP BY customer_id
        ) l ON l.customer_id = a.customer_id
        WHERE a.balance <> ROUND(COALESCE(l.available, 0), 2)
           OR a.pending <> ROUND(COALESCE(l.pending, 0), 2)
           OR a.debt <> ROUND(COALESCE(l.debt, 0), 2)
           OR ROUND(a.balance + a.pending - a.debt, 2) <> ROUND(COALESCE(l.total, 0), 2)
        """,
    ),
    (
        "movements without an account",
        f"""
        SELECT DISTINCT m.customer_id, NULL FROM {MOVEMENTS} m
        LEFT JOIN {ACCOUNTS} a ON a.customer_id = m.customer_id WHERE a.customer_id IS NULL
        """,
    ),
    (
        "debt left while bonuses are available",
        f"SELECT customer_id, NULL FROM {ACCOUNTS} WHERE debt > 0 AND balance > 0",
    ),
]


def ledger_differences(limit: int = 1000) -> list[Difference]:
    """Every difference between the accounts and the ledger (at most `limit` per check)."""
    found: list[Difference] = []
    with connection.cursor() as cursor:
        for problem, sql in CHECKS:
            cursor.execute(f"{sql} LIMIT {int(limit)}")
            found += [Difference(c, m, problem) for c, m in cursor.fetchall()]
    return found
