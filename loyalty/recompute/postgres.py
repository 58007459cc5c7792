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
import time
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
# The per-customer hash aggregates of a million customers need about this much; spilling them to
# disk doubles the pass. One whole-base run at a time (advisory lock), so it is spent once.
WORK_MEM = "1GB"


def _month_start(index: int) -> dt.date:
    year, month0 = divmod(index, 12)
    return dt.date(year, month0 + 1, 1)


def _session_settings() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")


# The nightly step's status: the rule of the day, else the stored status. `odd` marks customers
# whose stored state cannot be stepped from: no stored status although they bought before.
NIGHTLY_STATUS = """
    coalesce(rule, nullif(old_status, '')) AS status,
    CASE WHEN rule IS NOT NULL AND rule <> old_status THEN %(day)s::date ELSE old_since END
        AS since,
    (NOT has_row OR old_status = '') AND f < %(day)s AS odd
    FROM day
"""
# The full replay's status comes from the replayed history.
REPLAY_STATUS = """
    replay.status AS status, replay.since AS since, false AS odd
    FROM day LEFT JOIN loyalty_replay_status replay USING (customer_id)
"""


def _aggregate(day: dt.date, th: Thresholds, status_sql: str, recent: bool) -> None:
    """(Re)create temp table loyalty_calc: one row per customer with a completed purchase up to
    `day`, from one pass over the purchases: count, total, first and last day, the last 12
    months' count and total, the month bitmap; then the stored row, the rule of the day and the
    resulting status."""
    cut = DayCutoffs.for_day(day, th)
    months = max(th.vip_months, th.growing_months)
    # width_bucket over the window's month starts gives 1 for the oldest month ... `months` for
    # the last one before the day's month: bit (months - bucket) = that many months before.
    window = [_month_start(cut.month - n) for n in range(months, 0, -1)]
    params = {
        "day": day,
        "recent": recent_since(day),
        "window": window,
        "months": months,
        "window_start": window[0],
        "month_start": _month_start(cut.month),
        "lost_before": cut.lost_before,
        "newcomer_from": cut.newcomer_from,
        "one_time_first_from": cut.one_time_first_from,
        "one_time_last_until": cut.one_time_last_until,
        "vip_mask": (1 << th.vip_months) - 1,
        "growing_mask": (1 << th.growing_months) - 1,
        "regular": th.regular_enabled,
    }
    if recent:
        recent_sql = """
            count(*) FILTER (WHERE purchase_date > %(recent)s)::int AS n12,
            coalesce(sum(total) FILTER (WHERE purchase_date > %(recent)s), 0) AS m12,"""
        stored_recent_sql = ""
    else:
        # The nightly keeps the stored 12-month figures and recomputes them only for the
        # customers whose window changed (see _recent): summing every purchase of the last
        # year again each night would double the pass.
        recent_sql = ""
        stored_recent_sql = """
            coalesce(stored.purchases_12m, 0) AS n12,
            coalesce(stored.total_12m, 0) AS m12,"""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS loyalty_calc")
        cursor.execute(
            f"""
            CREATE TEMP TABLE loyalty_calc ON COMMIT DROP AS
            WITH agg AS (
                SELECT customer_id,
                       count(*)::int AS n, sum(total) AS total,
                       min(purchase_date) AS f, max(purchase_date) AS l,
                       {recent_sql}
                       coalesce(bit_or(1::bigint << (%(months)s - width_bucket(
                           purchase_date, %(window)s::date[])))
                           FILTER (WHERE purchase_date >= %(window_start)s
                                   AND purchase_date < %(month_start)s), 0) AS bits
                FROM {PURCHASES}
                WHERE status = '{COMPLETED}' AND customer_id IS NOT NULL
                  AND purchase_date <= %(day)s
                GROUP BY customer_id
            ), day AS (
                SELECT agg.*,
                       stored.customer_id IS NOT NULL AS has_row,
                       coalesce(stored.status, '') AS old_status,
                       stored.status_since AS old_since,
                       stored.home_store_id AS old_home,
                       {stored_recent_sql}
                       CASE
                           WHEN agg.l < %(lost_before)s THEN '{LOST}'
                           WHEN agg.bits & %(vip_mask)s = %(vip_mask)s THEN '{VIP}'
                           WHEN agg.bits & %(growing_mask)s = %(growing_mask)s THEN '{GROWING}'
                           WHEN agg.f >= %(newcomer_from)s THEN '{NEWCOMER}'
                           WHEN agg.f >= %(one_time_first_from)s
                                AND agg.l <= %(one_time_last_until)s THEN '{ONE_TIME}'
                           WHEN %(regular)s AND agg.l = %(day)s THEN '{REGULAR}'
                       END::varchar(10) AS rule
                FROM agg LEFT JOIN {FIGURES_TABLE} stored USING (customer_id)
            )
            SELECT day.*, {status_sql}
            """,
            params,
        )
        cursor.execute("CREATE UNIQUE INDEX ON loyalty_calc (customer_id)")
        cursor.execute("ANALYZE loyalty_calc")


def _recent(day: dt.date, changed_since: dt.date | None) -> None:
    """Temp table loyalty_home (customer_id, store_id, n12, m12): the home store — most
    purchases in the last 12 months, ties to the most recent — and the 12-month count and total.

    changed_since None: every customer's home store (the 12-month figures came with the
    aggregate). Otherwise only customers whose last 12 months changed after `changed_since`:
    purchases dated since, purchases that left the window since, customers without a stored row;
    their 12-month figures replace the stored ones in loyalty_calc. The others keep theirs.
    (Purchases that arrive late or change status recompute their customer on the spot.)"""
    params = {"day": day, "recent": recent_since(day)}
    which = ""
    with connection.cursor() as cursor:
        if changed_since is not None:
            params.update(since=changed_since, recent_before=recent_since(changed_since))
            cursor.execute("DROP TABLE IF EXISTS loyalty_changed")
            cursor.execute(
                f"""
                CREATE TEMP TABLE loyalty_changed ON COMMIT DROP AS
                SELECT customer_id FROM {PURCHASES}
                WHERE customer_id IS NOT NULL
                  AND ((purchase_date > %(since)s AND purchase_date <= %(day)s)
                       OR (purchase_date > %(recent_before)s AND purchase_date <= %(recent)s))
                UNION
                SELECT customer_id FROM loyalty_calc WHERE NOT has_row
                """,
                params,
            )
            which = "AND customer_id IN (SELECT customer_id FROM loyalty_changed)"
        cursor.execute("DROP TABLE IF EXISTS loyalty_home")
        cursor.execute(
            f"""
            CREATE TEMP TABLE loyalty_home ON COMMIT DROP AS
            SELECT DISTINCT ON (customer_id) customer_id, store_id,
                   (sum(n) OVER per_customer)::int AS n12, sum(total) OVER per_customer AS m12
            FROM (
                SELECT customer_id, store_id, count(*) AS n, sum(total) AS total,
                       max(purchased_at) AS latest
                FROM {PURCHASES}
                WHERE status = '{COMPLETED}' AND customer_id IS NOT NULL
                  AND purchase_date > %(recent)s AND purchase_date <= %(day)s {which}
                GROUP BY customer_id, store_id
            ) per_store
            WINDOW per_customer AS (PARTITION BY customer_id)
            ORDER BY customer_id, store_id IS NULL, n DESC, latest DESC, store_id DESC
            """,
            params,
        )
        if changed_since is not None:
            # Changed customers with no purchase left in the window: no home, nothing recent.
            cursor.execute(
                """
                INSERT INTO loyalty_home (customer_id, store_id, n12, m12)
                SELECT customer_id, NULL, 0, 0 FROM loyalty_changed
                WHERE customer_id NOT IN (SELECT customer_id FROM loyalty_home)
                """
            )
        cursor.execute("CREATE UNIQUE INDEX ON loyalty_home (customer_id)")
        cursor.execute("ANALYZE loyalty_home")
        if changed_since is not None:
            cursor.execute(
                """
                UPDATE loyalty_calc c SET n12 = h.n12, m12 = h.m12
                FROM loyalty_home h WHERE h.customer_id = c.customer_id
                """
            )


def _record_changes(day: dt.date, run: StatusRun, now: dt.datetime) -> int:
    """Insert the status changes of the day's step; returns how many."""
    with connection.cursor() as cursor:
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


SCORED = {"r": "c.l", "f": "c.n12", "m": "c.m12"}


def _score_sql(name: str, points: list) -> str:
    """CASE scoring a metric against breakpoints [[top value, score], ...] (ascending)."""
    if not points:
        return "NULL"
    column = SCORED[name]
    whens = " ".join(
        f"WHEN {column} <= %({name}_{i})s THEN {score}" for i, (_, score) in enumerate(points)
    )
    return f"CASE WHEN c.l > %(scored)s THEN CASE {whens} ELSE 5 END END"


def _score_params(points: dict, day: dt.date) -> dict:
    params = {"scored": scored_since(day)}
    for name in SCORED:
        for i, (top, _score) in enumerate(points.get(name, [])):
            params[f"{name}_{i}"] = top
    return params


def _figure_values(points: dict | None, every_home: bool = False) -> str:
    """SELECT list of FIGURE_COLUMNS computed from loyalty_calc c and loyalty_home h.

    `every_home`: loyalty_home holds every customer with a purchase in the last 12 months (a
    whole-base run), so a customer missing from it has no home store now. Otherwise (a nightly
    step) it holds only the customers whose 12 months changed, and the others keep theirs."""
    scored = points is not None
    home = (
        "h.store_id"
        if every_home
        else "CASE WHEN h.customer_id IS NULL THEN c.old_home ELSE h.store_id END"
    )
    values = {
        "status": "coalesce(c.status, '')",
        "status_since": "c.since",
        "purchase_count": "c.n",
        "lifetime_total": "c.total",
        "average_check": "round(c.total / c.n, 2)",
        "frequency": "round(c.n * %(dpm)s / greatest(%(dpm)s, (%(day)s::date - c.f)), 2)",
        "first_purchase": "c.f",
        "last_purchase": "c.l",
        "home_store_id": home,
        "purchases_12m": "c.n12",
        "total_12m": "c.m12",
        "r_score": (_score_sql("r", points["r"]) if scored else "NULL") + "::smallint",
        "f_score": (_score_sql("f", points["f"]) if scored else "NULL") + "::smallint",
        "m_score": (_score_sql("m", points["m"]) if scored else "NULL") + "::smallint",
    }
    assert tuple(values) == FIGURE_COLUMNS
    return ", ".join(values.values())


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
        cursor.execute(
            f"""
            INSERT INTO {FIGURES_TABLE} (customer_id, {", ".join(FIGURE_COLUMNS)})
            SELECT c.customer_id, {_figure_values(None)}
            FROM loyalty_calc c LEFT JOIN (SELECT NULL::bigint AS customer_id,
                                                  NULL::bigint AS store_id) h ON false
            WHERE NOT c.has_row AND NOT c.odd
            """,
            {"day": day, "dpm": DAYS_PER_MONTH},
        )
        written += cursor.rowcount
    return written


def _rank(day: dt.date) -> dict:
    """R/F/M breakpoints over everyone with a purchase in the last 24 months: for each score
    1–5 the largest value scoring it, where score = ceil(5 × k / N), k = how many values are
    ≤ this one (cume_dist on integers). Counted per distinct value, so a million customers
    are never sorted."""
    points = {}
    with connection.cursor() as cursor:
        for name, column in (("r", "l"), ("f", "n12"), ("m", "m12")):
            cursor.execute(
                f"""
                WITH per_value AS (
                    SELECT {column} AS value, count(*) AS n
                    FROM loyalty_calc WHERE l > %s GROUP BY {column}
                ), cumulative AS (
                    SELECT value, (sum(n) OVER (ORDER BY value))::bigint AS k,
                           (sum(n) OVER ())::bigint AS total
                    FROM per_value
                )
                SELECT max(value), (5 * k + total - 1) / total AS score
                FROM cumulative GROUP BY score ORDER BY score
                """,
                [scored_since(day)],
            )
            points[name] = [[value, int(score)] for value, score in cursor.fetchall()]
    return points


def _write_figures(day: dt.date, points: dict, every_home: bool = False) -> int:
    columns = ", ".join(FIGURE_COLUMNS)
    values = _figure_values(points, every_home)
    new_columns = ", ".join(f"new.{c}" for c in FIGURE_COLUMNS)
    old_columns = ", ".join(f"f.{c}" for c in FIGURE_COLUMNS)
    params = {"day": day, "dpm": DAYS_PER_MONTH, **_score_params(points, day)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {FIGURES_TABLE} f SET ({columns}) = ({new_columns})
            FROM (
                SELECT c.customer_id AS id, {values}
                FROM loyalty_calc c LEFT JOIN loyalty_home h USING (customer_id)
                WHERE c.has_row AND NOT c.odd
            ) new (id, {columns})
            WHERE f.customer_id = new.id AND ({old_columns}) IS DISTINCT FROM ({new_columns})
            """,
            params,
        )
        written = cursor.rowcount
        cursor.execute(
            f"""
            INSERT INTO {FIGURES_TABLE} (customer_id, {columns})
            SELECT c.customer_id, {values}
            FROM loyalty_calc c LEFT JOIN loyalty_home h USING (customer_id)
            WHERE NOT c.has_row AND NOT c.odd
            """,
            params,
        )
        written += cursor.rowcount
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
    *,
    days: Sequence[dt.date],
    previous: dt.date,
    th: Thresholds,
    run: StatusRun,
    now: dt.datetime,
) -> generic.Outcome:
    """Step the stored statuses (valid for `previous`) through `days` (the consecutive days
    after it, the last being the run's date) and store the figures and scores of the last."""
    _session_settings()
    outcome = generic.Outcome()
    for day in days:
        started = time.perf_counter()
        _aggregate(day, th, NIGHTLY_STATUS, recent=False)
        outcome.timed("aggregate", started)
        started = time.perf_counter()
        outcome.changes_written += _record_changes(day, run, now)
        if day != days[-1]:
            outcome.figures_written += _write_statuses_only(day)
            outcome.add(_finish_odd(day, th, run, now, {}))
        outcome.timed("write", started)
    day = days[-1]
    started = time.perf_counter()
    _recent(day, changed_since=previous)
    outcome.timed("home", started)
    started = time.perf_counter()
    points = _rank(day)
    outcome.customers = _customers()
    outcome.timed("rank", started)
    started = time.perf_counter()
    outcome.figures_written += _write_figures(day, points)
    outcome.timed("write", started)
    started = time.perf_counter()
    odd = _finish_odd(day, th, run, now, points)
    outcome.figures_written += odd.figures_written
    outcome.changes_written += odd.changes_written
    outcome.changes_superseded += odd.changes_superseded
    outcome.timed("odd", started)
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
    outcome = generic.Outcome()
    started = time.perf_counter()
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
        outcome.timed("replay", started)
        started = time.perf_counter()
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

        outcome.timed("history", started)
    _session_settings()
    started = time.perf_counter()
    _aggregate(as_of, th, REPLAY_STATUS, recent=True)
    outcome.timed("aggregate", started)
    started = time.perf_counter()
    _recent(as_of, changed_since=None)
    outcome.timed("home", started)
    started = time.perf_counter()
    points = _rank(as_of)
    outcome.timed("rank", started)
    started = time.perf_counter()
    figures_written = _write_figures(as_of, points, every_home=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {FIGURES_TABLE} f
            WHERE NOT EXISTS (SELECT 1 FROM loyalty_calc c WHERE c.customer_id = f.customer_id)
            """
        )
        figures_written += cursor.rowcount
    outcome.timed("write", started)
    outcome.customers = counter["customers"]
    outcome.figures_written = figures_written
    outcome.changes_written = written
    outcome.changes_superseded = superseded
    outcome.breakpoints = points
    return outcome
