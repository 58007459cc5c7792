"""statuses: customer figures, statuses and R/F/M scores recomputed over the scale's dataset.

Measured, in this order, on the scale's dataset (its purchases up to today):
- full replay of every customer's history up to yesterday (first install / backfill), written back;
- the nightly run for today, stepping on from yesterday's stored statuses, written back: total time,
  its compute part (aggregate pass, home stores, R/F/M breakpoints, statuses — everything but the
  writes), and the rows it wrote;
- the same nightly run again: rows written (0 expected) and time;
- touched customers: a random 10,000 (fewer at small scales) recomputed as after an import, per
  customer.
Baseline, in the same run: a plain ``GROUP BY customer`` (count, sum, min, max) over the same
completed purchases, materialised into a temporary table as the nightly aggregate is, best of two
(before and after the nightly run).

The full replay starts from empty loyalty tables (a first install: every history row written).
The benchmark leaves the loyalty tables holding today's figures (the other benchmarks don't read
them); the purchases and customers are untouched.
"""

from __future__ import annotations

import datetime as dt
import random
import time

from bench.harness import Context, Result

ORDER = 40
DESCRIPTION = "statuses, figures and R/F/M: full replay, nightly run, touched customers"
TARGET_SCALE = "full"
TOUCHED = 10_000


def _groupby_seconds(day: dt.date) -> float:
    from django.db import connection, transaction

    from customers.models import Purchase
    from loyalty.recompute.postgres import WORK_MEM

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")  # as the nightly run has
        started = time.perf_counter()
        cursor.execute(
            f"""
            CREATE TEMP TABLE bench_groupby ON COMMIT DROP AS
            SELECT customer_id, count(*), sum(total), min(purchase_date), max(purchase_date)
            FROM {Purchase._meta.db_table}
            WHERE status = 'completed' AND customer_id IS NOT NULL AND purchase_date <= %s
            GROUP BY customer_id
            """,
            [day],
        )
        return time.perf_counter() - started


def run(ctx: Context) -> list[Result]:
    from django.db import connection
    from django.utils import timezone

    from customers.models import Customer
    from loyalty.models import CustomerFigures, StatusChange, StatusRun
    from loyalty.services import customer_statuses_refresh, statuses_recompute

    info = ctx.ensure_dataset()
    today = timezone.localdate()
    yesterday = today - dt.timedelta(days=1)
    customers = Customer.objects.count()
    purchases = sum(
        n for table, n in (info.get("rows") or {}).items() if table == "customers_purchase"
    )
    size = f"{customers:,} customers, {purchases:,} purchases (seed_demo)"
    applies = ctx.scale == TARGET_SCALE and not ctx.in_ci

    print("   Full replay up to yesterday, as on a first install (loyalty tables emptied)...")
    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE {StatusChange._meta.db_table}, {CustomerFigures._meta.db_table}, "
            f"{StatusRun._meta.db_table}"
        )
    started = time.perf_counter()
    full = statuses_recompute(as_of=yesterday, full=True)
    full_seconds = time.perf_counter() - started

    baseline = [_groupby_seconds(today)]
    print("   Nightly run for today...")
    started = time.perf_counter()
    nightly = statuses_recompute(as_of=today)
    nightly_seconds = time.perf_counter() - started
    baseline.append(_groupby_seconds(today))
    floor = min(baseline)
    compute = sum(nightly.timings.get(p, 0.0) for p in ("aggregate", "home", "rank"))

    print("   The same nightly run again...")
    started = time.perf_counter()
    again = statuses_recompute(as_of=today)
    again_seconds = time.perf_counter() - started

    ids = list(Customer.objects.values_list("pk", flat=True))
    touched = random.Random(2026).sample(ids, min(TOUCHED, len(ids)))
    print(f"   Recomputing {len(touched):,} touched customers...")
    started = time.perf_counter()
    customer_statuses_refresh(customer_ids=touched)
    touched_seconds = time.perf_counter() - started
    per_customer_us = touched_seconds / len(touched) * 1e6

    assert full.kind == "full" and nightly.kind == "nightly" and again.kind == "nightly"
    phases = ", ".join(f"{k} {v:.2f} s" for k, v in nightly.timings.items())
    return [
        Result(
            name="nightly run for today, written back",
            value=nightly_seconds,
            unit="s",
            baseline_name="plain GROUP BY customer (count, sum, min, max)",
            baseline_value=floor,
            data_size=size,
            target="< 30 s",
            passed=nightly_seconds < 30 if applies else None,
            notes=[
                f"Nightly phases: {phases}; {nightly.figures_written:,} figure rows and "
                f"{nightly.changes_written:,} status changes written.",
                f"GROUP BY baseline runs: {', '.join(f'{b:.2f} s' for b in baseline)} "
                "(the best is the baseline).",
            ],
        ),
        Result(
            name="nightly compute part (aggregate, home stores, R/F/M, statuses)",
            value=compute,
            unit="s",
            baseline_name="plain GROUP BY customer (count, sum, min, max)",
            baseline_value=floor,
            data_size=size,
            target="≤ 3× baseline",
            passed=compute <= 3 * floor if applies else None,
        ),
        Result(
            name="same nightly run again: rows written",
            value=again.figures_written + again.changes_written + again.changes_superseded,
            unit="rows",
            data_size=size,
            target="0",
            passed=(again.figures_written + again.changes_written == 0) if not ctx.in_ci else None,
            notes=[f"The second nightly run took {again_seconds:.1f} s."],
        ),
        Result(
            name="full replay from the first purchase, written back",
            value=full_seconds,
            unit="s",
            baseline_name="plain GROUP BY customer (count, sum, min, max)",
            baseline_value=floor,
            data_size=size,
            target="< 300 s",
            passed=full_seconds < 300 if applies else None,
            notes=[
                "Full replay phases: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in full.timings.items()),
                f"{full.changes_written:,} status changes written, "
                f"{full.changes_superseded:,} superseded, {full.figures_written:,} figure rows.",
            ],
        ),
        Result(
            name=f"touched customers ({len(touched):,}), per customer",
            value=per_customer_us,
            unit="µs",
            data_size=size,
            target="< 150 µs",
            passed=per_customer_us < 150 if applies else None,
            notes=[
                f"Touched customers: {touched_seconds:.2f} s for {len(touched):,} customers "
                "(their purchases, history and figures read, replayed, written back)."
            ],
        ),
    ]
