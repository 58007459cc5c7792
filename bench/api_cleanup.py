"""What the API benchmark's orders write, and how it is undone: which customers order (and which
of them had an account) noted in tables of the database before the run, so that an interrupted
run is undone by the next one; `check_bonus_ledger` before and after the run; the orders, their
lines and ledger rows deleted afterwards and the customers' ledger figures worked out again."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.harness import ROOT, Context

CLIENT_PREFIX = "bench-api-"
ORDER_PREFIX = "BENCH-API-"
STATE_TABLES = (
    "bench_api_state",
    "bench_api_accounts",
    "bench_api_movements",
)  # the last: old runs


def orders_written() -> dict:
    """The benchmark's orders in the database (warm-ups included) and the accruals they posted."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'completed'), "
            "count(DISTINCT customer_id) FROM customers_purchase "
            "WHERE source = 'app' AND external_id LIKE %s",
            [ORDER_PREFIX + "%"],
        )
        orders, completed, customers = cursor.fetchone()
        cursor.execute(
            "SELECT count(*), COALESCE(sum(amount), 0) FROM loyalty_bonusmovement "
            "WHERE kind = 'accrual' AND purchase_id IN (SELECT id FROM customers_purchase "
            "WHERE source = 'app' AND external_id LIKE %s)",
            [ORDER_PREFIX + "%"],
        )
        accruals, accrued = cursor.fetchone()
    return {
        "orders": orders,
        "completed": completed,
        "customers": customers,
        "accruals": accruals,
        "accrued": accrued,
    }


def check_ledger(ctx: Context) -> dict:
    """`manage.py check_bonus_ledger` against the scale's database, in a child process."""
    env = {
        **os.environ,
        "DATABASE_URL": ctx.database_url,
        "DJANGO_SETTINGS_MODULE": "pharmacrm.settings",
    }
    env.setdefault("SECRET_KEY", "bench-only-secret-key")
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "manage.py", "check_bonus_ledger"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "returncode": out.returncode,
        "seconds": time.perf_counter() - began,
        "output": (out.stdout + out.stderr).strip()[-3000:],
    }


def snapshot(customers: list[int]) -> dict:
    """Notes, in tables of the database (so an interrupted run can be undone by the next one),
    which customers will order and which of them had an account. Returns their ledger's sums, to
    verify the clean-up."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_api_state (created timestamptz NOT NULL)")
        cursor.execute("INSERT INTO bench_api_state VALUES (now())")
        cursor.execute(
            "CREATE TABLE bench_api_accounts AS SELECT c.id AS customer_id, "
            "a.customer_id IS NOT NULL AS existed, a.updated_at "
            "FROM unnest(%s::bigint[]) AS c(id) "
            "LEFT JOIN loyalty_bonusaccount a ON a.customer_id = c.id",
            [customers],
        )
    return _ledger_sums(customers)


def _ledger_sums(customers: list[int]) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), sum(balance), sum(pending), sum(debt), max(updated_at) "
            "FROM loyalty_bonusaccount WHERE customer_id = ANY(%s)",
            [customers],
        )
        accounts = cursor.fetchone()
        cursor.execute(
            "SELECT count(*), sum(remaining), sum(uncovered), max(id) "
            "FROM loyalty_bonusmovement WHERE customer_id = ANY(%s)",
            [customers],
        )
        movements = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM loyalty_bonusconsumption c JOIN loyalty_bonusmovement m "
            "ON m.id = c.credit_id WHERE m.customer_id = ANY(%s)",
            [customers],
        )
        consumptions = cursor.fetchone()
    return {
        "customers": customers,
        "sums": {"accounts": accounts, "movements": movements, "consumptions": consumptions},
    }


def verify_restored(before: dict) -> None:
    """The ordering customers' ledger sums as before the run."""
    after = _ledger_sums(before["customers"])["sums"]
    if after != before["sums"]:
        raise RuntimeError(
            "the ordering customers' ledger differs from before the run (not put back, or "
            f"changed by something else meanwhile): before {before['sums']}, after {after}"
        )


def cleanup() -> None:
    """Deletes the benchmark's orders, their lines and ledger rows and its API clients; then the
    ordering customers' lots, debts and accounts are worked out again from the ledger rows that
    remain (what the ledger check verifies), and the accounts the orders opened are deleted if
    nothing else uses them. Recomputing rather than restoring a copy keeps whatever else wrote
    to those customers' ledger meanwhile."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_api_state') IS NOT NULL")
        has_state = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM customers_purchase WHERE source = 'app' AND external_id LIKE %s",
            [ORDER_PREFIX + "%"],
        )
        orders = cursor.fetchone()[0]
    if orders and not has_state:
        raise RuntimeError(
            f"{orders} benchmark orders ({ORDER_PREFIX}...) but no note of the customers who "
            "placed them (bench_api_accounts): clean up by hand."
        )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_api_orders ON COMMIT DROP AS SELECT id FROM "
            "customers_purchase WHERE source = 'app' AND external_id LIKE %s",
            [ORDER_PREFIX + "%"],
        )
        cursor.execute(
            "CREATE TEMP TABLE bench_api_new ON COMMIT DROP AS SELECT id FROM "
            "loyalty_bonusmovement WHERE purchase_id IN (SELECT id FROM bench_api_orders)"
        )
        cursor.execute(
            "DELETE FROM loyalty_bonusconsumption WHERE credit_id IN (SELECT id FROM "
            "bench_api_new) OR debit_id IN (SELECT id FROM bench_api_new)"
        )
        cursor.execute(
            "DELETE FROM loyalty_bonusmovement WHERE id IN (SELECT id FROM bench_api_new)"
        )
        if has_state:
            # A credit's unspent part is its amount less what debits took from it; a debit's
            # uncovered part, its amount less what it took (an accrual pays debts off).
            for column, side, sign, kind in (
                ("remaining", "credit_id", "", "m.amount > 0"),
                ("uncovered", "debit_id", "-", "m.amount < 0"),
            ):
                cursor.execute(
                    f"""
                    UPDATE loyalty_bonusmovement m SET {column} = {sign}m.amount - t.taken
                    FROM (
                        SELECT m.id, COALESCE(SUM(c.amount), 0) AS taken
                        FROM loyalty_bonusmovement m
                        LEFT JOIN loyalty_bonusconsumption c ON c.{side} = m.id
                        WHERE {kind}
                          AND m.customer_id IN (SELECT customer_id FROM bench_api_accounts)
                        GROUP BY m.id
                    ) t
                    WHERE m.id = t.id AND m.{column} IS DISTINCT FROM {sign}m.amount - t.taken
                    """
                )
            cursor.execute(
                """
                UPDATE loyalty_bonusaccount a SET
                    balance = COALESCE(l.available, 0), pending = COALESCE(l.pending, 0),
                    debt = COALESCE(l.debt, 0), updated_at = COALESCE(s.updated_at, a.updated_at)
                FROM bench_api_accounts s
                LEFT JOIN (
                    SELECT customer_id,
                        SUM(remaining) FILTER (WHERE amount > 0 AND NOT is_pending) AS available,
                        SUM(remaining) FILTER (WHERE amount > 0 AND is_pending) AS pending,
                        SUM(uncovered) FILTER (WHERE amount < 0) AS debt
                    FROM loyalty_bonusmovement
                    WHERE customer_id IN (SELECT customer_id FROM bench_api_accounts)
                    GROUP BY customer_id
                ) l ON l.customer_id = s.customer_id
                WHERE a.customer_id = s.customer_id
                  AND (a.balance, a.pending, a.debt, a.updated_at) IS DISTINCT FROM (
                      COALESCE(l.available, 0), COALESCE(l.pending, 0), COALESCE(l.debt, 0),
                      COALESCE(s.updated_at, a.updated_at))
                """
            )
            cursor.execute(
                "DELETE FROM loyalty_bonusaccount a USING bench_api_accounts s "
                "WHERE NOT s.existed AND a.customer_id = s.customer_id AND NOT EXISTS "
                "(SELECT 1 FROM loyalty_bonusmovement m WHERE m.customer_id = a.customer_id)"
            )
        cursor.execute(
            "DELETE FROM customers_purchaseline WHERE purchase_id IN "
            "(SELECT id FROM bench_api_orders)"
        )
        cursor.execute(
            "DELETE FROM customers_purchase WHERE id IN (SELECT id FROM bench_api_orders)"
        )
        cursor.execute(
            "DELETE FROM api_idempotentrequest WHERE client_id IN "
            "(SELECT id FROM api_apiclient WHERE name LIKE %s)",
            [CLIENT_PREFIX + "%"],
        )
        cursor.execute("DELETE FROM api_apiclient WHERE name LIKE %s", [CLIENT_PREFIX + "%"])
        for table in STATE_TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
