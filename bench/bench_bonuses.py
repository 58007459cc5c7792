"""bonuses: checkout redemptions through the ledger service, the nightly expiry, the ledger check.

Seeded (not timed), set-based, on the scale's customers (every one gets an account, so 1,000,000
at full scale): per account an expired campaign lot (a fifth of them partly spent by an earlier
redemption, with its consumption row), for a third a second expired lot (a birthday bonus), for
one in 365 a lot that ended a month ago, two unexpired lots of 5,000 to spend at checkout, and for
a seventh a pending accrual of their last purchase. Each account's available and pending figures
are summed from its lots.

Measured, in this order:
- the nightly expiry, ``bonus_expire(now=...)`` as the beat runs it: first a typical night a month
  ago (the lots of one account in 365 due), then tonight, when every account has a lot due (the
  worst case: a whole-base campaign or the first night after importing an old ledger). Baseline:
  the bare set-based floor of tonight's change, one statement zeroing the same lots and taking
  their sum off the balances (no ledger rows, no chunks), rolled back before the job.
- checkout redemptions, 8 client processes (forked, one connection each), random customers and
  amounts (1.00-50.00), a distinct idempotency key each: ``bonus_redeem`` (the service); the
  service's own two statements sent by psycopg2 without Django, each round trip timed (where the
  time goes); and the baseline, the same redemptions as one bare conditional ``UPDATE ... SET
  balance = balance - x WHERE customer_id = c AND balance >= x`` in autocommit, run before and
  after the service (the faster run is the baseline) and then given back, so the ledger stays
  whole. Each run also reports the CPU time per call of the clients and of their PostgreSQL
  backends (from /proc), so that a run slowed by other work on the machine still says what a
  redemption costs.
- ``ledger_differences()`` (``manage.py check_bonus_ledger``) and the total balance against the
  seeded total minus what was expired and redeemed: any difference fails the benchmark.

PostgreSQL runs with its default durability (``synchronous_commit`` on): every redemption is a
committed, flushed transaction. The clients and PostgreSQL share the machine's cores. The ledger
tables (accounts, movements, consumptions) are emptied before the run, and again after it when the
check found nothing (the dataset has no ledger rows); customers and purchases are untouched.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import time
import traceback
from array import array
from decimal import Decimal

from bench.harness import Context, Result

ORDER = 50
DESCRIPTION = "bonus ledger: concurrent checkout redemptions, nightly expiry, ledger check"
TARGET_SCALE = "full"
TARGET_RATE = 1_000  # redemptions/s, issue 5
TARGET_P99_MS = 20.0
TARGET_EXPIRY_S = 60.0
CLIENTS = 8
REDEMPTIONS = {"ci": 2_000, "small": 20_000, "full": 80_000}
SEED = 2026
TYPICAL_NIGHT_BEFORE = dt.timedelta(days=29)  # the n1 lots, ended 30 days before "now"
PHASES = ("BEGIN", "REDEEM_SQL", "COMMIT")
LOT = Decimal("5000.00")  # each of the two unexpired lots: far more than any client takes


def run(ctx: Context) -> list[Result]:
    from django.db import connection
    from django.utils import timezone

    ctx.ensure_dataset()
    if connection.vendor != "postgresql":  # pragma: no cover - the harness is PostgreSQL only
        raise RuntimeError("the bonus benchmark needs PostgreSQL")
    applies = ctx.scale == TARGET_SCALE and not ctx.in_ci
    now = timezone.now().replace(microsecond=0)
    load_before = os.getloadavg()

    print("   Emptying the ledger and seeding accounts and lots (not timed)...")
    _truncate()
    seeded = _seed(now)
    print(
        f"   {seeded['accounts']:,} accounts, {seeded['movements']:,} movements "
        f"in {seeded['seconds']:.1f} s"
    )

    # -- nightly expiry ---------------------------------------------------------------------
    print("   bonus_expire on a typical night (one account in 365 due)...")
    _checkpoint()
    typical = _expire(now - TYPICAL_NIGHT_BEFORE)
    print(f"   {typical['accounts']:,} accounts in {typical['seconds']:.2f} s")
    _vacuum()
    due = _due(now)
    print("   Expiry baseline: the bare set-based change, rolled back...")
    _checkpoint()
    bare_expiry = _bare_expiry(now)
    _vacuum()
    _checkpoint()
    print(f"   bonus_expire with every account due ({due['accounts']:,})...")
    expiry = _expire(now)
    print(f"   {expiry['seconds']:.1f} s")
    again = _expire(now)
    for run_, expected in ((typical, seeded["typical"]), (expiry, due)):
        if (run_["accounts"], run_["amount"]) != (expected["accounts"], expected["amount"]):
            raise RuntimeError(
                f"bonus_expire took {run_['amount']} from {run_['accounts']:,} accounts; "
                f"{expected['amount']} in {expected['accounts']:,} accounts were due"
            )
    if again["accounts"]:
        raise RuntimeError(f"a second expiry run took bonuses again: {again}")

    # -- checkout redemptions ---------------------------------------------------------------
    _vacuum()  # as after the night: autovacuum has cleaned up behind the expiry by morning
    plan = _plan(seeded["customer_ids"], REDEMPTIONS[ctx.scale])
    total_before = _total_balance()
    runs, bare_runs = {}, []
    for kind in ("bare", "service", "service_sql", "bare"):
        _checkpoint()
        print(f"   {CLIENTS} clients, {len(plan):,} redemptions: {kind}...")
        outcome = _clients(ctx, kind, plan)
        print(
            f"   {outcome['rate']:,.0f}/s, p50 {outcome['p50']:.2f} ms, "
            f"p99 {outcome['p99']:.2f} ms, {outcome['refused']} refused; {_cpu(outcome)}"
        )
        if kind == "bare":
            _give_back(outcome["applied"])
            if _total_balance() != total_before:
                raise RuntimeError("the bare baseline's redemptions were not given back exactly")
            bare_runs.append(outcome)
        else:
            total_before -= outcome["redeemed"]
            runs[kind] = outcome
    runs["bare"] = max(bare_runs, key=lambda r: r["rate"])  # the faster run is the baseline
    runs["bare_runs"] = bare_runs
    load_after = os.getloadavg()

    # -- the ledger check -------------------------------------------------------------------
    print("   Checking the ledger...")
    check = _check(seeded, typical["amount"] + expiry["amount"], runs)
    if check["differences"]:
        listed = "\n".join(
            f"  customer {d.customer_id} movement {d.movement_id}: {d.problem}"
            for d in check["differences"][:50]
        )
        raise RuntimeError(
            f"{len(check['differences'])} differences between the accounts and the ledger "
            f"(tables kept for inspection):\n{listed}"
        )
    _truncate()

    return _results(
        ctx,
        applies,
        seeded,
        due,
        typical,
        bare_expiry,
        expiry,
        again,
        runs,
        check,
        plan,
        load_before,
        load_after,
    )


# -- seeding ---------------------------------------------------------------------------------------


def _tables() -> dict[str, str]:
    from customers.models import Customer, Purchase
    from loyalty.models import BonusAccount, BonusConsumption, BonusMovement

    return {
        "accounts": BonusAccount._meta.db_table,
        "movements": BonusMovement._meta.db_table,
        "consumptions": BonusConsumption._meta.db_table,
        "customers": Customer._meta.db_table,
        "purchases": Purchase._meta.db_table,
    }


def _truncate() -> None:
    from django.db import connection

    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {t['consumptions']}, {t['movements']}, {t['accounts']}")


# One INSERT per kind of lot, in customer order (the keys then grow with the rows, as the live
# keys of one day's movements do). %(now)s is the expiry's "now"; the expired lots end before it.
_LOTS = [
    # key, kind, amount, available_at, expires_at, pending, which customers
    ("e1", "campaign", "100.00", "- interval '400 days'", "- interval '1 day'", False, "true"),
    (
        "e2",
        "birthday",
        "200.00",
        "- interval '365 days'",
        "- interval '2 hours'",
        False,
        "rn %% 3 = 0",
    ),
    # Due on one night of the year only: a typical night's expiry (one account in 365).
    (
        "n1",
        "birthday",
        "50.00",
        "- interval '395 days'",
        "- interval '30 days'",
        False,
        "rn %% 365 = 0",
    ),
    ("u1", "welcome", str(LOT), "- interval '30 days'", "+ interval '100 days'", False, "true"),
    ("u2", "campaign", str(LOT), "- interval '10 days'", "+ interval '300 days'", False, "true"),
]

_MOVEMENT_COLUMNS = (
    "customer_id, kind, amount, idempotency_key, purchase_id, campaign_ref, created_at, "
    "created_by_id, channel, reason, available_at, expires_at, is_pending, remaining, uncovered, "
    "accrual_percent, status"
)


def _seed(now: dt.datetime) -> dict:
    from django.db import connection

    t = _tables()
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_bonus_customers")
        cursor.execute(
            "CREATE TEMP TABLE bench_bonus_customers AS "
            f"SELECT id AS c, row_number() OVER (ORDER BY id) AS rn FROM {t['customers']}"
        )
        # Accounts first: each movement references its customer's account.
        cursor.execute(
            f"INSERT INTO {t['accounts']} (customer_id, balance, pending, debt, updated_at) "
            "SELECT c, 0, 0, 0, %(now)s FROM bench_bonus_customers ORDER BY c",
            {"now": now},
        )
        for key, kind, amount, available, expires, pending, which in _LOTS:
            cursor.execute(
                f"""
                INSERT INTO {t["movements"]} ({_MOVEMENT_COLUMNS})
                SELECT c, %(kind)s, %(amount)s, 'bench:{key}:' || lpad(c::text, 10, '0'), NULL,
                    %(ref)s, %(now)s::timestamptz {available}, NULL, 'system', '',
                    %(now)s::timestamptz {available}, %(now)s::timestamptz {expires}, %(pending)s,
                    %(amount)s, NULL, NULL, ''
                FROM bench_bonus_customers WHERE {which} ORDER BY c
                """,
                {
                    "kind": kind,
                    "amount": Decimal(amount),
                    "ref": "bench" if kind == "campaign" else "",
                    "now": now,
                    "pending": pending,
                },
            )
        # A seventh wait for an accrual of their last purchase to become available.
        cursor.execute(
            f"""
            INSERT INTO {t["movements"]} ({_MOVEMENT_COLUMNS})
            SELECT c, 'accrual', 30.00, 'bench:p1:' || lpad(c::text, 10, '0'), p.id, '',
                %(now)s::timestamptz - interval '1 day', NULL, 'pos', '',
                %(now)s::timestamptz + interval '5 days',
                %(now)s::timestamptz + interval '370 days', true, 30.00, NULL, 5.00, 'regular'
            FROM bench_bonus_customers
            LEFT JOIN LATERAL (
                SELECT id FROM {t["purchases"]} WHERE customer_id = c
                ORDER BY purchase_date DESC LIMIT 1
            ) p ON true
            WHERE rn %% 7 = 0 ORDER BY c
            """,
            {"now": now},
        )
        # A fifth spent 40.00 of the first lot at a checkout a hundred days ago.
        cursor.execute(
            f"""
            INSERT INTO {t["movements"]} ({_MOVEMENT_COLUMNS})
            SELECT c, 'redemption', -40.00, 'bench:d1:' || lpad(c::text, 10, '0'), NULL, '',
                %(now)s::timestamptz - interval '100 days', NULL, 'pos', '', NULL, NULL, false,
                NULL, 0, NULL, ''
            FROM bench_bonus_customers WHERE rn %% 5 = 0 ORDER BY c
            """,
            {"now": now},
        )
        cursor.execute(
            f"""
            INSERT INTO {t["consumptions"]} (debit_id, credit_id, amount, created_at)
            SELECT d.id, e.id, 40.00, d.created_at
            FROM {t["movements"]} d
            JOIN {t["movements"]} e ON e.idempotency_key = 'bench:e1:' || lpad(d.customer_id::text, 10, '0')
            WHERE d.kind = 'redemption' ORDER BY d.id
            """  # noqa: E501
        )
        cursor.execute(
            f"""
            UPDATE {t["movements"]} e SET remaining = e.amount - c.amount
            FROM {t["consumptions"]} c WHERE e.id = c.credit_id
            """
        )
        # The accounts' figures are summed from their lots: consistent with the ledger.
        cursor.execute(
            f"""
            UPDATE {t["accounts"]} a SET balance = s.balance, pending = s.pending, debt = s.debt
            FROM (
                SELECT customer_id,
                    COALESCE(SUM(remaining) FILTER (WHERE amount > 0 AND NOT is_pending), 0)
                        AS balance,
                    COALESCE(SUM(remaining) FILTER (WHERE amount > 0 AND is_pending), 0)
                        AS pending,
                    COALESCE(SUM(uncovered) FILTER (WHERE amount < 0), 0) AS debt
                FROM {t["movements"]} GROUP BY customer_id
            ) s
            WHERE a.customer_id = s.customer_id
            """,
            {"now": now},
        )
        cursor.execute("SELECT c FROM bench_bonus_customers ORDER BY c")
        ids = [c for (c,) in cursor.fetchall()]
        cursor.execute("DROP TABLE bench_bonus_customers")
    _vacuum()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(*) FILTER (WHERE amount > 0), "
            f"count(*) FILTER (WHERE kind = 'redemption') FROM {t['movements']}"
        )
        movements, lots, partial = cursor.fetchone()
    return {
        "customer_ids": ids,
        "accounts": len(ids),
        "movements": movements,
        "lots": lots,
        "partial": partial,
        "typical": _due(now - TYPICAL_NIGHT_BEFORE),
        "total": _total_balance(),
        "seconds": time.perf_counter() - began,
    }


def _due(now: dt.datetime) -> dict:
    """The lots an expiry at `now` should take: how many, in how many accounts, how much."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT count(*), count(DISTINCT customer_id), COALESCE(SUM(remaining), 0)
            FROM {_tables()["movements"]}
            WHERE amount > 0 AND remaining > 0 AND NOT is_pending AND expires_at <= %s
            """,
            [now],
        )
        lots, accounts, amount = cursor.fetchone()
    return {"lots": lots, "accounts": accounts, "amount": amount}


def _vacuum() -> None:
    """Clean up and analyze the ledger tables (outside a transaction: VACUUM needs one of its
    own), as autovacuum would have between the seeding, the night and the morning."""
    from django.db import connection

    t = _tables()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {t['movements']}, {t['consumptions']}, {t['accounts']}")


def _checkpoint() -> None:
    """Start each timed part with the WAL of the previous one flushed to the tables."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def _total_balance() -> Decimal:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(SUM(balance), 0) FROM {_tables()['accounts']}")
        return cursor.fetchone()[0]


# -- expiry ----------------------------------------------------------------------------------------


def _bare_expiry(now: dt.datetime) -> dict:
    """The floor: the same lots zeroed and their sum taken off the balances in one statement
    (no debit or consumption rows, no chunks, no locks taken beforehand), then rolled back."""
    from django.db import connection, transaction

    t = _tables()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            began = time.perf_counter()
            cursor.execute(
                f"""
                WITH lots AS (
                    UPDATE {t["movements"]} m SET remaining = 0
                    FROM (SELECT id, remaining AS was FROM {t["movements"]}
                          WHERE remaining > 0 AND NOT is_pending AND expires_at <= %(now)s) x
                    WHERE m.id = x.id
                    RETURNING m.customer_id, x.was
                )
                UPDATE {t["accounts"]} a SET balance = a.balance - s.total, updated_at = %(now)s
                FROM (SELECT customer_id, SUM(was) AS total FROM lots GROUP BY customer_id) s
                WHERE a.customer_id = s.customer_id
                """,
                {"now": now},
            )
            rows = cursor.rowcount
            seconds = time.perf_counter() - began
            raise _Rollback
    except _Rollback:
        pass
    return {"seconds": seconds, "accounts": rows}


class _Rollback(Exception):
    pass


def _expire(now: dt.datetime) -> dict:
    from django.db import connection

    from loyalty.ledger_jobs import bonus_expire

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    machine = _machine_cpu()
    cpu = (time.process_time(), _process_cpu(backend))
    began = time.perf_counter()
    result = bonus_expire(now=now)
    seconds = time.perf_counter() - began
    machine = [after - before for before, after in zip(machine, _machine_cpu(), strict=True)]
    return {
        "seconds": seconds,
        "accounts": result.accounts,
        "amount": result.amount,
        "client_cpu": time.process_time() - cpu[0],
        "backend_cpu": _process_cpu(backend) - cpu[1],
        "machine_busy": machine[0] / machine[1] if machine[1] else 0.0,
    }


# -- redemptions -----------------------------------------------------------------------------------


def _plan(customer_ids: list[int], n: int) -> list[tuple[int, Decimal, str]]:
    """n redemptions: a random customer each (with replacement), 1.00-50.00, a distinct key."""
    rng = random.Random(SEED)
    tag = int(time.time())
    return [
        (rng.choice(customer_ids), Decimal(rng.randint(100, 5000)) / 100, f"bench:r:{tag}:{i}")
        for i in range(n)
    ]


def _clients(ctx: Context, kind: str, plan: list) -> dict:
    """Runs `plan` split over CLIENTS forked processes; their latencies and counts, merged."""
    import multiprocessing

    from django.db import connections

    mp = multiprocessing.get_context("fork")
    connections.close_all()  # a forked child must not share the parent's socket
    barrier = mp.Barrier(CLIENTS)
    queue = mp.Queue()
    procs = [
        mp.Process(
            target=_client,
            args=(i, kind, plan[i::CLIENTS], barrier, queue, ctx.conn_params()),
            daemon=True,
        )
        for i in range(CLIENTS)
    ]
    busy = _machine_cpu()
    for proc in procs:
        proc.start()
    reports = []
    try:
        for _ in procs:
            report = queue.get(timeout=3600)
            if "error" in report:
                raise RuntimeError(f"client {report['client']} ({kind}) failed:\n{report['error']}")
            reports.append(report)
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    busy = [after - before for before, after in zip(busy, _machine_cpu(), strict=True)]
    latencies = array("d")
    applied: dict[int, Decimal] = {}
    for report in reports:
        latencies.frombytes(report["latencies"])
        for customer, amount in report["applied"].items():
            applied[customer] = applied.get(customer, Decimal(0)) + amount
    ordered = sorted(latencies)
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    return {
        "kind": kind,
        "calls": len(ordered),
        "wall": wall,
        "rate": len(ordered) / wall,
        "p50": _percentile(ordered, 0.50) * 1000,
        "p99": _percentile(ordered, 0.99) * 1000,
        "max": ordered[-1] * 1000,
        "refused": sum(r["refused"] for r in reports),
        "redeemed": sum(applied.values(), Decimal(0)) + sum(r["warm"] for r in reports),
        "applied": applied,
        # CPU time per call, ms: the clients' own, their PostgreSQL backends'.
        "client_cpu": sum(r["client_cpu"] for r in reports) / len(ordered) * 1000,
        "backend_cpu": sum(r["backend_cpu"] for r in reports) / len(ordered) * 1000,
        # The whole machine meanwhile (from the fork to the last report): cores busy on average.
        "machine_busy": busy[0] / busy[1] if busy[1] else 0.0,
        "phases": [
            sum(p) / len(ordered) * 1000 for p in zip(*(r["phases"] for r in reports), strict=True)
        ],
    }


def _cpu(run: dict) -> str:
    """Where a run's CPU went, in words."""
    own = (run["client_cpu"] + run["backend_cpu"]) * run["rate"] / 1000
    return (
        f"CPU per call {run['client_cpu']:.2f} ms in the client + {run['backend_cpu']:.2f} ms "
        f"in its PostgreSQL backend; the machine's cores busy {run['machine_busy']:.2f} of "
        f"{os.cpu_count()} on average, {own:.2f} of them by these clients and backends"
    )


def _ceiling(run: dict) -> float:
    """Calls per second the machine's cores would allow at this run's CPU cost per call."""
    return os.cpu_count() * 1000 / (run["client_cpu"] + run["backend_cpu"])


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (a PostgreSQL backend)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu() -> tuple[float, float]:
    """(busy CPU seconds over every core, elapsed seconds) since boot, from /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / ticks, sum(values[:8]) / ticks / os.cpu_count()


def _percentile(ordered, q: float) -> float:
    """Nearest rank."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


_INHERITED = []  # connections a child got from its parent: kept, never closed (shared sockets)


def _client(index: int, kind: str, items: list, barrier, queue, conn_params: dict) -> None:
    """One checkout client in a forked process, with a connection of its own."""
    try:
        from django.db import connections

        for conn in connections.all(initialized_only=True):
            if conn.connection is not None:
                _INHERITED.append(conn.connection)
                conn.connection = None
        call = _caller(kind, conn_params)
        # One real call first (not counted): the connection, its backend's caches, the plans.
        customer, _amount, key = items[0]
        warm = (
            Decimal("0.01") if call(customer, Decimal("0.01"), f"{key}:{kind}:warm") else Decimal(0)
        )
        for i in range(len(getattr(call, "phases", ()))):  # timed from here on
            call.phases[i] = 0.0
        applied: dict[int, Decimal] = {}
        refused = 0
        latencies = array("d")
        clock = time.perf_counter
        backend = call.backend_pid()
        barrier.wait(timeout=600)
        cpu = (time.process_time(), _process_cpu(backend))
        start = clock()
        for customer, amount, key in items:
            began = clock()
            ok = call(customer, amount, f"{key}:{kind}")
            latencies.append(clock() - began)
            if ok:
                applied[customer] = applied.get(customer, Decimal(0)) + amount
            else:
                refused += 1
        end = clock()
        cpu = (time.process_time() - cpu[0], _process_cpu(backend) - cpu[1])
        if kind == "bare":  # given back with the others': count the warm-up there too
            applied[items[0][0]] = applied.get(items[0][0], Decimal(0)) + warm
            warm = Decimal(0)
        queue.put(
            {
                "client": index,
                "start": start,
                "end": end,
                "latencies": latencies.tobytes(),
                "applied": applied,
                "refused": refused,
                "warm": warm,
                "phases": list(getattr(call, "phases", ())),
                "client_cpu": cpu[0],
                "backend_cpu": cpu[1],
            }
        )
    except BaseException:
        barrier.abort()
        queue.put({"client": index, "error": traceback.format_exc()})


def _caller(kind: str, conn_params: dict):
    """A function (customer, amount, key) -> redeemed?, for this kind of client."""
    if kind == "service":
        from loyalty.ledger import InsufficientBonus, bonus_redeem

        def call(customer, amount, key):
            try:
                bonus_redeem(customer, amount, key=key, channel="bench")
            except InsufficientBonus:
                return False
            return True

        def backend_pid():
            from django.db import connection

            return connection.connection.get_backend_pid()

        call.backend_pid = backend_pid
        return call

    import psycopg2

    conn = psycopg2.connect(**conn_params)
    cursor = conn.cursor()
    if kind == "bare":
        conn.autocommit = True
        sql = (
            f"UPDATE {_tables()['accounts']} SET balance = balance - %s "
            "WHERE customer_id = %s AND balance >= %s"
        )

        def call(customer, amount, key):
            cursor.execute(sql, (amount, customer, amount))
            return cursor.rowcount == 1

        call.backend_pid = conn.get_backend_pid
        return call

    if kind == "service_sql":  # the service's statements, without Django around them
        from django.utils import timezone
        from psycopg2 import errors

        from loyalty.ledger import REDEEM_SQL

        # BEGIN and COMMIT sent explicitly (as psycopg2 does on its own) to time each round trip.
        conn.autocommit = True
        clock = time.perf_counter
        phases = array("d", [0.0] * len(PHASES))

        def call(customer, amount, key):
            params = {
                "customer": customer,
                "amount": amount,
                "key": key,
                "purchase": None,
                "now": timezone.now(),
                "user": None,
                "channel": "bench",
                "reason": "",
            }
            t0 = clock()
            cursor.execute("BEGIN")
            t1 = clock()
            try:
                cursor.execute(REDEEM_SQL, params)
                cursor.fetchone()
            except errors.DatabaseError as error:
                cursor.execute("ROLLBACK")
                if error.pgcode == "PB001":  # refused: the balance does not cover it
                    return False
                raise
            t2 = clock()
            cursor.execute("COMMIT")
            t3 = clock()
            for i, spent in enumerate((t1 - t0, t2 - t1, t3 - t2)):
                phases[i] += spent
            return True

        call.phases = phases
        call.backend_pid = conn.get_backend_pid
        return call
    raise ValueError(kind)


def _give_back(applied: dict[int, Decimal]) -> None:
    """Undo the bare baseline's balance changes (it writes no ledger rows)."""
    from django.db import connection

    if not applied:
        return
    customers, amounts = zip(*sorted(applied.items()), strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {_tables()["accounts"]} a SET balance = a.balance + v.amount
            FROM unnest(%s::bigint[], %s::numeric[]) AS v (customer_id, amount)
            WHERE a.customer_id = v.customer_id
            """,
            [list(customers), list(amounts)],
        )


# -- the check -------------------------------------------------------------------------------------


def _check(seeded: dict, expired: Decimal, runs: dict) -> dict:
    from loyalty.ledger_check import Difference, ledger_differences

    began = time.perf_counter()
    differences = ledger_differences()
    seconds = time.perf_counter() - began
    expected = (
        seeded["total"] - expired - runs["service"]["redeemed"] - runs["service_sql"]["redeemed"]
    )
    total = _total_balance()
    if total != expected:
        differences.append(
            Difference(
                None,
                None,
                f"total balance {total}, expected {expected} (seeded minus expired minus redeemed)",
            )
        )
    return {"differences": differences, "seconds": seconds, "total": total}


# -- the report ------------------------------------------------------------------------------------


def _results(
    ctx,
    applies,
    seeded,
    due,
    typical,
    bare_expiry,
    expiry,
    again,
    runs,
    check,
    plan,
    load_before,
    load_after,
) -> list[Result]:
    service, bare, sql = runs["service"], runs["bare"], runs["service_sql"]
    customers = len({c for c, _a, _k in plan})
    redemption_size = (
        f"{len(plan):,} redemptions (1.00-50.00) by {CLIENTS} client processes over "
        f"{customers:,} random customers of {seeded['accounts']:,} accounts"
    )
    expiry_size = (
        f"{seeded['accounts']:,} accounts, {seeded['movements']:,} movements: "
        f"{due['lots']:,} lots due in {due['accounts']:,} accounts, every account expiring the "
        f"same night ({seeded['partial']:,} lots partly spent, with their consumption rows)"
    )
    load = (
        f"Load: the {CLIENTS} client processes and PostgreSQL share the machine's "
        f"{os.cpu_count()} cores, with whatever else runs (load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after); "
        "synchronous_commit on, every redemption a flushed commit."
    )
    return [
        Result(
            name=f"checkout redemptions through bonus_redeem, {CLIENTS} clients",
            value=service["rate"],
            unit="redemptions/s",
            baseline_name="bare conditional UPDATE of the balance, autocommit",
            baseline_value=bare["rate"],
            data_size=redemption_size,
            target=f"≥ {TARGET_RATE:,}/s",
            passed=service["rate"] >= TARGET_RATE if applies else None,
            notes=[
                f"Service: {service['calls']:,} calls in {service['wall']:.1f} s, "
                f"{service['refused']} refused, slowest {service['max']:.1f} ms; each call one "
                "transaction: one call of the loyalty_bonus_redeem function, COMMIT.",
                "Bare baseline runs: "
                + " and ".join(
                    f"{r['rate']:,.0f}/s (p99 {r['p99']:.2f} ms)" for r in runs["bare_runs"]
                )
                + " (before and after the service; the faster is the baseline), "
                f"{sum(r['refused'] for r in runs['bare_runs'])} refused; their balance changes "
                "were given back afterwards.",
                load,
                f"CPU ceiling: with the {os.cpu_count()} cores to themselves, cores / CPU per call "
                f"would allow {_ceiling(service):,.0f}/s through bonus_redeem, "
                f"{_ceiling(sql):,.0f}/s for its statements without Django, "
                f"{_ceiling(bare):,.0f}/s for the bare UPDATE (derived, not measured).",
                "CPU: "
                + "; ".join(
                    f"{name} — {_cpu(r)}"
                    for name, r in (
                        ("bonus_redeem", service),
                        ("its statements without Django", sql),
                        ("bare UPDATE", bare),
                    )
                )
                + ".",
            ],
        ),
        Result(
            name="redemption latency p50 (bonus_redeem)",
            value=service["p50"],
            unit="ms",
            baseline_name="bare conditional UPDATE",
            baseline_value=bare["p50"],
            data_size=redemption_size,
        ),
        Result(
            name="redemption latency p99 (bonus_redeem)",
            value=service["p99"],
            unit="ms",
            baseline_name="bare conditional UPDATE",
            baseline_value=bare["p99"],
            data_size=redemption_size,
            target=f"< {TARGET_P99_MS:.0f} ms",
            passed=service["p99"] < TARGET_P99_MS if applies else None,
        ),
        Result(
            name="the service's statement without Django (psycopg2)",
            value=sql["rate"],
            unit="redemptions/s",
            baseline_name="bare conditional UPDATE of the balance, autocommit",
            baseline_value=bare["rate"],
            data_size=redemption_size,
            notes=[
                f"Without Django: p50 {sql['p50']:.2f} ms, p99 {sql['p99']:.2f} ms, "
                f"{sql['refused']} refused — the same REDEEM_SQL (the function call) in one "
                "transaction; the gap to bonus_redeem is Python and Django per call. Mean time "
                "per call in each round trip: "
                + ", ".join(f"{n} {v:.2f} ms" for n, v in zip(PHASES, sql["phases"], strict=True))
                + "."
            ],
        ),
        Result(
            name="nightly expiry, bonus_expire",
            value=expiry["seconds"],
            unit="s",
            baseline_name="bare set-based zeroing of the same lots and balances",
            baseline_value=bare_expiry["seconds"],
            data_size=expiry_size,
            target=f"< {TARGET_EXPIRY_S:.0f} s for 1,000,000 accounts",
            passed=expiry["seconds"] < TARGET_EXPIRY_S if applies else None,
            notes=[
                f"Expiry: {expiry['accounts']:,} accounts lost {expiry['amount']:,} bonuses "
                f"({due['lots']:,} lots: a debit per account, a consumption per lot); "
                f"the same run again took {again['seconds']:.2f} s and expired nothing. "
                f"CPU: {expiry['backend_cpu']:.1f} s in the job's PostgreSQL backend, "
                f"{expiry['client_cpu']:.1f} s in Python; the machine's cores busy "
                f"{expiry['machine_busy']:.2f} of {os.cpu_count()} on average (the job runs on "
                "one connection: one core at most).",
                f"A typical night (lots of one account in 365 due): {typical['accounts']:,} "
                f"accounts expired in {typical['seconds']:.2f} s.",
                "Expiry baseline: one statement, no ledger rows, no chunks, rolled back; "
                "the tables vacuumed and a checkpoint taken before each timed part.",
                f"Seeding (not timed): {seeded['seconds']:.1f} s, set-based.",
            ],
        ),
        Result(
            name="ledger check after both parts: differences",
            value=len(check["differences"]),
            unit="differences",
            data_size=expiry_size,
            target="0",
            passed=not check["differences"],
            notes=[
                f"ledger_differences() over every account took {check['seconds']:.1f} s; the "
                f"total balance ({check['total']:,}) is the seeded total minus what was expired "
                "and redeemed."
            ],
        ),
    ]
