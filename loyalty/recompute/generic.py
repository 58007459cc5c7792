"""Recomputation customer by customer, in Python, on any database.

Serves the touched customers after an import or an API purchase (on PostgreSQL too: a few
thousand customers are read through the (customer, date) index), the odd customers the nightly
SQL leaves over, and every whole-base run on SQLite (the embedded demo), where it gives the same
answers as the PostgreSQL set-based path, only slower.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from django.db import connection

from customers.models import Purchase

from ..figures import (
    Figures,
    PurchaseFact,
    breakpoints,
    figures_of,
    score_against,
    scored_since,
    scores,
)
from ..models import CustomerFigures, StatusChange, StatusRun
from ..status_rules import DayCutoffs, Thresholds, status_changes, status_rules_on_day
from .common import (
    delete_figures,
    insert_changes,
    is_postgresql,
    supersede_changes,
    write_figures,
)

CHUNK = 2000


@dataclass
class Outcome:
    customers: int = 0
    figures_written: int = 0
    changes_written: int = 0
    changes_superseded: int = 0
    breakpoints: dict = field(default_factory=dict)
    # Seconds per phase of a set-based run ("aggregate", "home", "rank", "write", ...).
    timings: dict = field(default_factory=dict)

    def timed(self, phase: str, started: float) -> None:
        self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - started

    def add(self, other: Outcome) -> None:
        self.customers += other.customers
        self.figures_written += other.figures_written
        self.changes_written += other.changes_written
        self.changes_superseded += other.changes_superseded


def _purchases(customer_ids: Sequence[int] | None, as_of: dt.date) -> Iterator[tuple]:
    """(customer, date, total, store, purchased at) of completed purchases, by customer."""
    if customer_ids is not None and is_postgresql():
        # One array parameter: an IN list of thousands of ids costs more to build than to run.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT customer_id, purchase_date, total, store_id, purchased_at
                FROM {Purchase._meta.db_table}
                WHERE customer_id = ANY(%s) AND status = %s AND purchase_date <= %s
                ORDER BY customer_id, purchase_date, id
                """,
                [list(customer_ids), Purchase.Status.COMPLETED, as_of],
            )
            yield from cursor.fetchall()
        return
    rows = Purchase.objects.filter(
        status=Purchase.Status.COMPLETED, customer__isnull=False, purchase_date__lte=as_of
    )
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=customer_ids)
    yield from (
        rows.order_by("customer_id", "purchase_date", "id")
        .values_list("customer_id", "purchase_date", "total", "store_id", "purchased_at")
        .iterator(chunk_size=CHUNK)
    )


def _history(customer_ids: Sequence[int] | None) -> dict[int, list[tuple]]:
    """The changes in effect: {customer: [(id, date, old, new), ...]} in date order."""
    if customer_ids is not None and is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT customer_id, id, effective_date, old_status, new_status
                FROM {StatusChange._meta.db_table}
                WHERE customer_id = ANY(%s) AND superseded_at IS NULL
                ORDER BY customer_id, effective_date, id
                """,
                [list(customer_ids)],
            )
            rows = cursor.fetchall()
    else:
        changes = StatusChange.objects.filter(superseded_at__isnull=True)
        if customer_ids is not None:
            changes = changes.filter(customer_id__in=customer_ids)
        rows = changes.order_by("customer_id", "effective_date", "id").values_list(
            "customer_id", "id", "effective_date", "old_status", "new_status"
        )
    history: dict[int, list[tuple]] = {}
    for row in rows:
        history.setdefault(row[0], []).append(row[1:])
    return history


def _stored_statuses(customer_ids: Sequence[int] | None) -> dict[int, str]:
    if customer_ids is not None and is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT customer_id, status FROM {CustomerFigures._meta.db_table} "
                "WHERE customer_id = ANY(%s)",
                [list(customer_ids)],
            )
            return dict(cursor.fetchall())
    figures = CustomerFigures.objects.all()
    if customer_ids is not None:
        figures = figures.filter(customer_id__in=customer_ids)
    return dict(figures.values_list("customer_id", "status"))


def history_diff(
    customer_id: int, computed: Sequence[tuple], stored: Sequence[tuple]
) -> tuple[list[int], list[tuple]]:
    """Stored rows in effect that the computed history no longer has (to supersede), and the
    computed rows not stored yet (to insert). Identical rows are left alone."""
    wanted = {(dt.date.fromordinal(day), old or "", new) for day, old, new in computed}
    have = {(day, old, new): pk for pk, day, old, new in stored}
    supersede = [pk for key, pk in have.items() if key not in wanted]
    insert = [(customer_id, *key) for key in sorted(wanted) if key not in have]
    return supersede, insert


@dataclass
class _Computed:
    customer_id: int
    figures: Figures
    status: str
    status_since: dt.date | None


def _facts(rows: Iterable[tuple]) -> list[PurchaseFact]:
    make = PurchaseFact._make
    return [make(r[1:]) for r in rows]


def recompute_customers(
    *,
    customer_ids: Sequence[int] | None,
    as_of: dt.date,
    th: Thresholds,
    run: StatusRun,
    now: dt.datetime,
    replay: bool = True,
    rank: bool = False,
    saved_breakpoints: dict | None = None,
) -> Outcome:
    """Recompute figures, status and history of the given customers (None: all) as of `as_of`.

    replay=True: the history is replayed from the first purchase (full and incremental runs).
    replay=False: the nightly step — the rules on `as_of` alone, else the stored status stays;
    customers with no stored status yet are replayed.
    rank=True: R/F/M are ranked over everyone computed (whole-base runs); otherwise scored against
    `saved_breakpoints` (incremental runs never re-rank the base).
    """
    bits = max(th.vip_months, th.growing_months)
    cut = DayCutoffs.for_day(as_of, th)
    until = as_of.toordinal()
    history = _history(customer_ids)
    stored = _stored_statuses(customer_ids)
    outcome = Outcome()
    supersede: list[int] = []
    inserts: list[tuple] = []
    computed: list[_Computed] = []
    seen: set[int] = set()
    for customer_id, rows in itertools.groupby(_purchases(customer_ids, as_of), lambda r: r[0]):
        facts = _facts(rows)
        figures = figures_of(facts, as_of, bits)
        seen.add(customer_id)
        days = sorted({f.date.toordinal() for f in facts})
        past = history.get(customer_id, [])
        if replay or not stored.get(customer_id):
            changes = status_changes(days, th, until)
            old, new = history_diff(customer_id, changes, past)
            status, since = changes[-1][2], dt.date.fromordinal(changes[-1][0])
        else:
            status = stored[customer_id]
            since = past[-1][1] if past else None
            rule = status_rules_on_day(
                first=figures.first_purchase,
                last=figures.last_purchase,
                month_bits=figures.month_bits,
                cut=cut,
                th=th,
            )
            old, new = [], []
            if rule is not None and rule != status:
                new = [(customer_id, as_of, status, rule)]
                status, since = rule, as_of
        supersede.extend(old)
        inserts.extend(new)
        computed.append(_Computed(customer_id, figures, status, since))
        outcome.customers += 1

    # Customers with stored figures or history but no completed purchase up to as_of.
    gone = (set(stored) | set(history)) - seen
    for customer_id in gone:
        supersede.extend(pk for pk, *_ in history.get(customer_id, []))

    rfm = _rfm(computed, as_of, rank, saved_breakpoints or {})
    outcome.breakpoints = rfm.pop("breakpoints", {})
    rows = [
        (
            c.customer_id,
            c.status,
            c.status_since,
            c.figures.purchase_count,
            c.figures.lifetime_total,
            c.figures.average_check,
            c.figures.frequency,
            c.figures.first_purchase,
            c.figures.last_purchase,
            c.figures.home_store_id,
            c.figures.purchases_12m,
            c.figures.total_12m,
            *rfm.get(c.customer_id, (None, None, None)),
        )
        for c in computed
    ]
    outcome.changes_superseded = supersede_changes(supersede, run, now)
    outcome.changes_written = insert_changes(inserts, run, now)
    outcome.figures_written = write_figures(rows) + delete_figures(gone & set(stored))
    return outcome


def _rfm(computed: list[_Computed], as_of: dt.date, rank: bool, saved: dict) -> dict:
    since = scored_since(as_of)
    population = [c for c in computed if c.figures.last_purchase > since]
    metrics = {
        "r": [c.figures.last_purchase for c in population],
        "f": [c.figures.purchases_12m for c in population],
        "m": [c.figures.total_12m for c in population],
    }
    result: dict = {}
    if rank:
        columns = {name: scores(values) for name, values in metrics.items()}
        result["breakpoints"] = {
            name: breakpoints(values, columns[name]) for name, values in metrics.items()
        }
    else:
        points = decode_breakpoints(saved)
        columns = {
            name: [score_against(v, points.get(name, [])) for v in values]
            for name, values in metrics.items()
        }
    for i, c in enumerate(population):
        result[c.customer_id] = (columns["r"][i], columns["f"][i], columns["m"][i])
    return result


def encode_breakpoints(points: dict) -> dict:
    """JSON-safe breakpoints: dates as ISO strings, money as strings."""
    return {name: [[str(value), score] for value, score in rows] for name, rows in points.items()}


def decode_breakpoints(points: dict) -> dict:
    from decimal import Decimal

    decoders = {"r": dt.date.fromisoformat, "f": int, "m": Decimal}
    return {
        name: [[decoders[name](value), score] for value, score in rows]
        for name, rows in points.items()
        if name in decoders
    }
