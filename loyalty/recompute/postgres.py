"""Whole-base recomputation on PostgreSQL, set-based (../shared/PERFORMANCE.md).

Nightly: one pass over the purchases builds every customer's aggregates and a month-activity
bitmap (bit i: a purchase in the (i+1)-th calendar month before the day's month); the rules of the
day are one CASE over them with the day's cut-off dates computed in Python; where no rule holds the
stored status stays. Results are written with `UPDATE ... FROM` only where something changed, so a
second run for the same date writes nothing.

Full replay: every customer's distinct purchase days stream out in one COPY as an array, the
Python rules engine turns them into the history of changes, and the history goes back with COPY
into a temporary table; rows in effect that the replay no longer gives are superseded, new ones
inserted, identical ones left alone.

Customers the set-based step cannot decide alone (no stored status yet although their first
purchase is older than the day; or figures stored but no purchase any more) are handed to the
customer-by-customer path.
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from collections.abc import Sequence

from django.db import connection

from customers.models import Purchase

from ..figures import DAYS_PER_MONTH, recent_since, scored_since
from ..models import StatusRun
from ..status_rules import (
    GROWING,
    LOST,
    NEWCOMER,
    ONE_TIME,
    REGULAR,
    VIP,
    DayCutoffs,
    Thresholds,
    status_changes,
)
from . import generic
from .common import CHANGES_TABLE, FIGURE_COLUMNS, FIGURES_TABLE

PURCHASES = Purchase._meta.db_table
COMPLETED = Purchase.Status.COMPLETED.value
ORDINAL_BASE = "DATE '0001-01-01'"  # date.toordinal() of it is 1


def _month_start(index: int) -> dt.date:
    year, month0 = divmod(index, 12)
    return dt.date(year, month0 + 1, 1)


def _aggregate(day: dt.date, th: Thresholds, status_sql: str) -> None:
    """(Re)create temp table loyalty_calc: one row per customer with a completed purchase up to
    `day`: aggregates, home store, bitmap, the stored row's status and the status for the day."""
    cut = DayCutoffs.for_day(day, th)
    months = max(th.vip_months, th.growing_months)
    params = {
        "day": day,
        "recent": recent_since(day),
        "month": cut.month,
        "window_start": _month_start(cut.month - months),
        "month_start": _month_start(cut.month),
        "lost_before": cut.lost_before,
        "newcomer_from": cut.newcomer_from,
        "one_time_first_from": cut.one_time_first_from,
        "one_time_last_until": cut.one_time_last_until,
        "vip_mask": (1 << th.vip_months) - 1,
        "growing_mask": (1 << th.growing_months) - 1,
        "regular": th.regular_enabled,
        "days_per_month": DAYS_PER_MONTH,
    }
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS loyalty_calc")
        cursor.execute(
            f"""
            CREATE TEMP TABLE loyalty_calc ON COMMIT DROP AS
            WITH per_store AS (
                SELECT customer_id, store_id,
                       count(*) AS n, sum(total) AS total,
                       min(purchase_date) AS f, max(purchase_date) AS l,
                       count(*) FILTER (WHERE purchase_date > %(recent)s) AS n12,
                       sum(total) FILTER (WHERE purchase_date > %(recent)s) AS m12,
                       max(purchased_at) FILTER (WHERE purchase_date > %(recent)s) AS last_at12,
                       bit_or(1::bigint << (%(month)s - 1 - (
                           extract(year FROM purchase_date)::int * 12
                           + extract(month FROM purchase_date)::int - 1)))
                           FILTER (WHERE purchase_date >= %(window_start)s
                                   AND purchase_date < %(month_start)s) AS bits
                FROM {PURCHASES}
                WHERE status = '{COMPLETED}' AND customer_id IS NOT NULL
                  AND purchase_date <= %(day)s
                GROUP BY customer_id, store_id
            ), agg AS (
                SELECT customer_id,
                       sum(n)::int AS n, sum(total) AS total, min(f) AS f, max(l) AS l,
                       sum(n12)::int AS n12, coalesce(sum(m12), 0) AS m12,
                       coalesce(bit_or(bits), 0) AS bits,
                       (array_agg(store_id ORDER BY n12 DESC, last_at12 DESC, store_id DESC)
                           FILTER (WHERE n12 > 0 AND store_id IS NOT NULL))[1] AS home
                FROM per_store
                GROUP BY customer_id
            )
            SELECT agg.*,
                   stored.customer_id IS NOT NULL AS has_row,
                   coalesce(stored.status, '') AS old_status,
                   stored.status_since AS old_since,
                   CASE
                       WHEN agg.l < %(lost_before)s THEN '{LOST}'
                       WHEN agg.bits & %(vip_mask)s = %(vip_mask)s THEN '{VIP}'
                       WHEN agg.bits & %(growing_mask)s = %(growing_mask)s THEN '{GROWING}'
                       WHEN agg.f >= %(newcomer_from)s THEN '{NEWCOMER}'
                       WHEN agg.f >= %(one_time_first_from)s
                            AND agg.l <= %(one_time_last_until)s THEN '{ONE_TIME}'
                       WHEN %(regular)s AND agg.l = %(day)s THEN '{REGULAR}'
                   END AS rule,
                   {status_sql}
            FROM agg LEFT JOIN {FIGURES_TABLE} stored USING (customer_id)
            """,
            params,
        )
        cursor.execute("CREATE UNIQUE INDEX ON loyalty_calc (customer_id)")
        cursor.execute("ANALYZE loyalty_calc")


# The nightly step's status: the rule of the day, else the stored status. `odd` marks customers
# whose stored state cannot be stepped from: no stored status although they bought before.
NIGHTLY_STATUS = """
    NULL::varchar AS status, NULL::date AS since,
    (stored.customer_id IS NULL OR stored.status = '') AND agg.f < %(day)s AS odd
"""

# The full replay's status comes from the replayed history (filled in afterwards).
REPLAY_STATUS = "NULL::varchar AS status, NULL::date AS since, false AS odd"


def _step_statuses(day: dt.date, run: StatusRun, now: dt.datetime) -> int:
    """Fill status/since of loyalty_calc for `day` and record the changes; returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE loyalty_calc SET
                status = coalesce(rule, old_status),
                since = CASE WHEN rule IS NOT NULL AND rule <> old_status
                             THEN %s::date ELSE old_since END
            WHERE NOT odd
            """,
            [day],
        )
        cursor.execute(
            f"""
            INSERT INTO {CHANGES_TABLE}
                (customer_id, effective_date, old_status, new_status, computed_at, run_id)
            SELECT customer_id, %s, old_status, rule, %s, %s
            FROM loyalty_calc
            WHERE NOT odd AND rule IS NOT NULL AND rule <> old_status
            """,
            [day, now, run.pk],
        )
        return cursor.rowcount


def _odd_and_gone() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT customer_id FROM loyalty_calc WHERE odd
            UNION
            SELECT f.customer_id FROM {FIGURES_TABLE} f
            WHERE NOT EXISTS (SELECT 1 FROM loyalty_calc c WHERE c.customer_id = f.customer_id)
            """
        )
        return [row[0] for row in cursor.fetchall()]


def _write_statuses_only(day: dt.date) -> int:
    """An intermediate catch-up day: store the statuses that changed (figures wait for the last
    day) and add the customers who first bought that day."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {FIGURES_TABLE} f SET status = c.status, status_since = c.since
            FROM loyalty_calc c
            WHERE f.customer_id = c.customer_id AND NOT c.odd AND c.has_row
              AND (f.status, f.status_since) IS DISTINCT FROM (c.status, c.since)
            """
        )
        written = cursor.rowcount
        written += _insert_new_rows(cursor, day, with_scores=False)
    return written


def _figure_values(day: dt.date, scores: bool) -> str:
    """SELECT list of FIGURE_COLUMNS computed from loyalty_calc c (and loyalty_rfm r)."""
    r, f, m = ("r.r", "r.f", "r.m") if scores else ("NULL", "NULL", "NULL")
    values = {
        "as_of": "%(day)s::date",
        "status": "c.status",
        "status_since": "c.since",
        "purchase_count": "c.n",
        "lifetime_total": "c.total",
        "average_check": "round(c.total / c.n, 2)",
        "frequency": "round(c.n * %(dpm)s / greatest(%(dpm)s, (%(day)s::date - c.f)), 2)",
        "first_purchase": "c.f",
        "last_purchase": "c.l",
        "home_store_id": "c.home",
        "purchases_12m": "c.n12",
        "total_12m": "c.m12",
        "r_score": f"{r}::smallint",
        "f_score": f"{f}::smallint",
        "m_score": f"{m}::smallint",
    }
    assert tuple(values) == FIGURE_COLUMNS
    return ", ".join(values.values())


def _insert_new_rows(cursor, day: dt.date, with_scores: bool) -> int:
    join = "LEFT JOIN loyalty_rfm r USING (customer_id)" if with_scores else ""
    cursor.execute(
        f"""
        INSERT INTO {FIGURES_TABLE} (customer_id, {", ".join(FIGURE_COLUMNS)})
        SELECT c.customer_id, {_figure_values(day, with_scores)}
        FROM loyalty_calc c {join}
        WHERE NOT c.has_row AND NOT c.odd
        """,
        {"day": day, "dpm": DAYS_PER_MONTH},
    )
    return cursor.rowcount


def _rank(day: dt.date) -> dict:
    """R/F/M of everyone with a purchase in the last 24 months into loyalty_rfm: ceil(5 × k / N),
    k = how many values are ≤ this one (cume_dist on integers). Returns the breakpoints."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS loyalty_rfm")
        cursor.execute(
            """
            CREATE TEMP TABLE loyalty_rfm ON COMMIT DROP AS
            SELECT customer_id, l, n12, m12,
                   (5 * count(*) OVER (ORDER BY l) + cnt - 1) / cnt AS r,
                   (5 * count(*) OVER (ORDER BY n12) + cnt - 1) / cnt AS f,
                   (5 * count(*) OVER (ORDER BY m12) + cnt - 1) / cnt AS m
            FROM (SELECT customer_id, l, n12, m12, count(*) OVER () AS cnt
                  FROM loyalty_calc WHERE l > %s) population
            """,
            [scored_since(day)],
        )
        cursor.execute("CREATE UNIQUE INDEX ON loyalty_rfm (customer_id)")
        points = {}
        for name, value in (("r", "l"), ("f", "n12"), ("m", "m12")):
            cursor.execute(
                f"SELECT max({value}), {name} FROM loyalty_rfm GROUP BY {name} ORDER BY {name}"
            )
            points[name] = [[v, int(s)] for v, s in cursor.fetchall()]
    return points


def _write_figures(day: dt.date) -> int:
    columns = ", ".join(FIGURE_COLUMNS)
    values = _figure_values(day, scores=True)
    new_columns = ", ".join(f"new.{c}" for c in FIGURE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {FIGURES_TABLE} f SET ({columns}) = ({new_columns})
            FROM (
                SELECT c.customer_id AS id, {values}
                FROM loyalty_calc c LEFT JOIN loyalty_rfm r USING (customer_id)
                WHERE c.has_row AND NOT c.odd
            ) new (id, {columns})
            WHERE f.customer_id = new.id AND ({", ".join(f"f.{c}" for c in FIGURE_COLUMNS)})
                IS DISTINCT FROM ({", ".join(f"new.{c}" for c in FIGURE_COLUMNS)})
            """,
            {"day": day, "dpm": DAYS_PER_MONTH},
        )
        written = cursor.rowcount
        written += _insert_new_rows(cursor, day, with_scores=True)
    return written


def _finish_odd(
    day: dt.date, th: Thresholds, run: StatusRun, now: dt.datetime, points: dict
) -> generic.Outcome:
    odd = _odd_and_gone()
    if not odd:
        return generic.Outcome()
    return generic.recompute_customers(
        customer_ids=odd,
        as_of=day,
        th=th,
        run=run,
        now=now,
        replay=True,
        rank=False,
        saved_breakpoints=generic.encode_breakpoints(points),
    )


def _customers() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM loyalty_calc")
        return cursor.fetchone()[0]


def nightly(
    *, days: Sequence[dt.date], th: Thresholds, run: StatusRun, now: dt.datetime
) -> generic.Outcome:
    """Step the stored statuses through `days` (consecutive, the last is the run's date) and
    store the figures and scores of the last."""
    outcome = generic.Outcome()
    for day in days:
        _aggregate(day, th, NIGHTLY_STATUS)
        outcome.changes_written += _step_statuses(day, run, now)
        if day != days[-1]:
            outcome.figures_written += _write_statuses_only(day)
            outcome.add(_finish_odd(day, th, run, now, {}))
    day = days[-1]
    points = _rank(day)
    outcome.customers = _customers()
    outcome.figures_written += _write_figures(day)
    odd = _finish_odd(day, th, run, now, points)
    outcome.figures_written += odd.figures_written
    outcome.changes_written += odd.changes_written
    outcome.changes_superseded += odd.changes_superseded
    outcome.breakpoints = points
    return outcome


class _LineSink(io.RawIOBase):
    """A writable file for COPY TO STDOUT that hands each complete line to a callback."""

    def __init__(self, on_line) -> None:
        self._on_line = on_line
        self._rest = b""

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        data = self._rest + bytes(chunk)
        lines = data.split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            self._on_line(line)
        return len(chunk)


def full_replay(
    *, as_of: dt.date, th: Thresholds, run: StatusRun, now: dt.datetime
) -> generic.Outcome:
    """Replay every customer's history up to `as_of` and store it with the figures and scores."""
    until = as_of.toordinal()
    # Spooled to disk: the COPY out must end before the COPY back in can start.
    changes_file = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - closed below
    status_file = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - closed below
    labels = {None: ""}
    counter = {"customers": 0}

    def on_line(line: bytes) -> None:
        customer, days = line.split(b"\t")
        ordinals = [int(d) for d in days[1:-1].split(b",")]
        changes = status_changes(ordinals, th, until)
        cid = customer.decode()
        for day, old, new in changes:
            iso = dt.date.fromordinal(day).isoformat()
            changes_file.write(f"{cid}\t{iso}\t{labels.get(old, old)}\t{new}\n".encode())
        day, _old, new = changes[-1]
        status_file.write(f"{cid}\t{new}\t{dt.date.fromordinal(day).isoformat()}\n".encode())
        counter["customers"] += 1

    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.copy_expert(
            f"""
            COPY (
                SELECT customer_id,
                       array_agg(DISTINCT purchase_date - {ORDINAL_BASE} + 1
                                 ORDER BY purchase_date - {ORDINAL_BASE} + 1)
                FROM {PURCHASES}
                WHERE status = '{COMPLETED}' AND customer_id IS NOT NULL
                  AND purchase_date <= '{as_of.isoformat()}'
                GROUP BY customer_id
            ) TO STDOUT
            """,
            _LineSink(on_line),
        )
        cursor.execute(
            """
            DROP TABLE IF EXISTS loyalty_replay_changes, loyalty_replay_status;
            CREATE TEMP TABLE loyalty_replay_changes (
                customer_id bigint, effective_date date, old_status varchar(10),
                new_status varchar(10)) ON COMMIT DROP;
            CREATE TEMP TABLE loyalty_replay_status (
                customer_id bigint PRIMARY KEY, status varchar(10), since date) ON COMMIT DROP;
            """
        )
        changes_file.seek(0)
        raw.copy_expert("COPY loyalty_replay_changes FROM STDIN", changes_file)
        status_file.seek(0)
        raw.copy_expert("COPY loyalty_replay_status FROM STDIN", status_file)
        changes_file.close()
        status_file.close()
        cursor.execute("CREATE INDEX ON loyalty_replay_changes (customer_id, effective_date)")
        cursor.execute("ANALYZE loyalty_replay_changes")
        cursor.execute("ANALYZE loyalty_replay_status")
        cursor.execute(
            f"""
            UPDATE {CHANGES_TABLE} s SET superseded_at = %s, superseded_by_id = %s
            WHERE s.superseded_at IS NULL AND NOT EXISTS (
                SELECT 1 FROM loyalty_replay_changes c
                WHERE c.customer_id = s.customer_id AND c.effective_date = s.effective_date
                  AND c.old_status = s.old_status AND c.new_status = s.new_status)
            """,
            [now, run.pk],
        )
        superseded = cursor.rowcount
        cursor.execute(
            f"""
            INSERT INTO {CHANGES_TABLE}
                (customer_id, effective_date, old_status, new_status, computed_at, run_id)
            SELECT c.customer_id, c.effective_date, c.old_status, c.new_status, %s, %s
            FROM loyalty_replay_changes c
            WHERE NOT EXISTS (
                SELECT 1 FROM {CHANGES_TABLE} s
                WHERE s.superseded_at IS NULL AND s.customer_id = c.customer_id
                  AND s.effective_date = c.effective_date
                  AND s.old_status = c.old_status AND s.new_status = c.new_status)
            """,
            [now, run.pk],
        )
        written = cursor.rowcount

    _aggregate(as_of, th, REPLAY_STATUS)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE loyalty_calc c SET status = r.status, since = r.since
            FROM loyalty_replay_status r WHERE r.customer_id = c.customer_id
            """
        )
    points = _rank(as_of)
    figures_written = _write_figures(as_of)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {FIGURES_TABLE} f
            WHERE NOT EXISTS (SELECT 1 FROM loyalty_calc c WHERE c.customer_id = f.customer_id)
            """
        )
        figures_written += cursor.rowcount
    return generic.Outcome(
        customers=counter["customers"],
        figures_written=figures_written,
        changes_written=written,
        changes_superseded=superseded,
        breakpoints=points,
    )
