"""What every recomputation path shares: settings, the stored as-of date, writing results."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from ..models import CustomerFigures, StatusChange, StatusRun, StatusSettings
from ..status_rules import Thresholds

# pg_try_advisory_lock key of the whole-base recomputations (nightly and full): never two at once.
RECOMPUTE_LOCK_KEY = 0x57A7_0001
ODD_CUSTOMERS = "odd"

FIGURE_COLUMNS = (
    "status",
    "status_since",
    "purchase_count",
    "lifetime_total",
    "average_check",
    "frequency",
    "first_purchase",
    "last_purchase",
    "home_store_id",
    "purchases_12m",
    "total_12m",
    "r_score",
    "f_score",
    "m_score",
)
FIGURES_TABLE = CustomerFigures._meta.db_table
CHANGES_TABLE = StatusChange._meta.db_table


def thresholds() -> Thresholds:
    settings = StatusSettings.objects.order_by("pk").first()
    return settings.thresholds() if settings else Thresholds()


def last_whole_base_run() -> StatusRun | None:
    """The last nightly or full run that finished without error: the stored statuses hold for
    its date and were computed with its thresholds."""
    return (
        StatusRun.objects.filter(
            kind__in=[StatusRun.Kind.NIGHTLY, StatusRun.Kind.FULL],
            finished_at__isnull=False,
            error="",
        )
        .order_by("-finished_at", "-id")
        .first()
    )


def stored_as_of() -> dt.date | None:
    """The date the stored statuses hold for: the last finished nightly or full run's."""
    run = last_whole_base_run()
    return run.as_of if run else None


def last_breakpoints() -> dict:
    run = (
        StatusRun.objects.filter(finished_at__isnull=False, error="")
        .exclude(rfm_breakpoints={})
        .order_by("-finished_at", "-id")
        .first()
    )
    return run.rfm_breakpoints if run else {}


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def write_figures(rows: Sequence[tuple]) -> int:
    """Upsert figure rows (customer_id, *FIGURE_COLUMNS); only rows that differ are written.

    Returns how many rows were inserted or changed.
    """
    if not rows:
        return 0
    columns = ("customer_id", *FIGURE_COLUMNS)
    changed = " OR ".join(
        f"{FIGURES_TABLE}.{c} IS DISTINCT FROM excluded.{c}"
        if is_postgresql()
        else f"{FIGURES_TABLE}.{c} IS NOT excluded.{c}"
        for c in FIGURE_COLUMNS
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in FIGURE_COLUMNS)
    head = f"INSERT INTO {FIGURES_TABLE} ({', '.join(columns)}) VALUES "
    tail = f" ON CONFLICT (customer_id) DO UPDATE SET {updates} WHERE {changed}"
    written = 0
    with connection.cursor() as cursor:
        if is_postgresql():
            from psycopg2.extras import execute_values

            for start in range(0, len(rows), 5000):
                chunk = rows[start : start + 5000]
                execute_values(cursor.cursor, head + "%s" + tail, chunk, page_size=len(chunk))
                written += cursor.cursor.rowcount
        else:
            placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
            for row in rows:
                cursor.execute(head + placeholders + tail, [_sqlite(v) for v in row])
                written += cursor.rowcount
    return written


def _sqlite(value):
    return str(value) if isinstance(value, Decimal) else value


def delete_figures(customer_ids: Iterable[int]) -> int:
    ids = list(customer_ids)
    if not ids:
        return 0
    return CustomerFigures.objects.filter(customer_id__in=ids)._raw_delete(connection.alias)


def supersede_changes(change_ids: Sequence[int], run: StatusRun, now: dt.datetime) -> int:
    done = 0
    for start in range(0, len(change_ids), 5000):
        done += StatusChange.objects.filter(
            pk__in=change_ids[start : start + 5000], superseded_at__isnull=True
        ).update(superseded_at=now, superseded_by=run)
    return done


def insert_changes(rows: Sequence[tuple], run: StatusRun, now: dt.datetime) -> int:
    """Insert (customer_id, effective date, old status or '', new status) history rows."""
    if not rows:
        return 0
    if is_postgresql():
        buffer = io.StringIO()
        stamp = now.isoformat()
        for customer_id, day, old, new in rows:
            buffer.write(f"{customer_id}\t{day.isoformat()}\t{old}\t{new}\t{stamp}\t{run.pk}\n")
        buffer.seek(0)
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(
                f"COPY {CHANGES_TABLE} (customer_id, effective_date, old_status, new_status,"
                " computed_at, run_id) FROM STDIN",
                buffer,
            )
    else:
        StatusChange.objects.bulk_create(
            [
                StatusChange(
                    customer_id=customer_id,
                    effective_date=day,
                    old_status=old,
                    new_status=new,
                    computed_at=now,
                    run=run,
                )
                for customer_id, day, old, new in rows
            ],
            batch_size=500,
        )
    return len(rows)


def today() -> dt.date:
    return timezone.localdate()
