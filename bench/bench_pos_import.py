"""pos_import: a POS XML file into the scale's customer base, against iterparse + bare COPY.

Measured (each import in a child process, so its peak memory is its own):
- a file of N purchases (N = the scale's customers: 1,000,000 at full scale) imported into the
  demo base: purchases per second, and peak memory;
- a file a tenth that size: peak memory, to show it is flat in the file size;
- the same N file imported again: everything unchanged, nothing written.
Baseline, in the same run: parsing the same file with `lxml.etree.iterparse` + `clear()` and a
bare `COPY` of its purchase and line rows into empty tables without indexes (the floor of
PERFORMANCE.md's "Ingest" section).

The file references the base's customers the way tills do: by card (55 %), by phone in another
notation (30 %), by both (5 %), a new customer (5 %) or nobody (5 %). Afterwards the benchmark
deletes what it added (its stores' purchases and the customers it created), so the dataset stays
the scale's dataset for the other benchmarks.
"""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

from bench.harness import Context, Result, run_import_child

ORDER = 20
DESCRIPTION = "POS XML import into the customer base vs iterparse + bare COPY"
# Purchases/s. The identity issue asked 10,000 before the bonus ledger existed; with it, every
# import accrues and redeems, and the bonuses issue asks to stay above 5,000.
TARGET_RATE = 5_000
TARGET_MEMORY_MB = 200
TARGET_SCALE = "full"
STORE_SMALL, STORE_LARGE = "BENCH-POS-S", "BENCH-POS-L"
SPENDING = 0.2  # share of the base's customers' purchases paid partly with bonuses
SEED_BALANCE = 500  # bonuses each customer of the base holds before the import


def run(ctx: Context) -> list[Result]:
    ctx.ensure_dataset()
    from django.db import connection

    from pharmacrm.references import row_checks_can_be_skipped

    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM customers_customer")
        max_customer = cursor.fetchone()[0] or 0
    _cleanup(max_customer)  # leftovers of an interrupted earlier run
    print("   Vacuuming what earlier runs deleted (not timed)...")
    _vacuum(ctx)
    print("   Seeding bonus balances (not timed)...")
    _seed_balances()

    n = ctx.customers
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    large = ctx.data_dir / f"pos_{ctx.scale}_{n}.xml"
    small = ctx.data_dir / f"pos_{ctx.scale}_{n // 10}.xml"
    print(f"   Writing POS files of {n:,} and {n // 10:,} purchases (not timed)...")
    identities = _identities(n)
    skus = _skus()
    _write(large, STORE_LARGE, n, identities, skus, seed=1)
    _write(small, STORE_SMALL, n // 10, identities, skus, seed=2)
    try:
        print("   Baseline: iterparse + bare COPY...")
        baseline = _baseline(large)
        print("   Importing the small file...")
        first_small = _import(small)
        print("   Importing the large file...")
        first = _import(large)
        print("   Importing the large file again...")
        again = _import(large)
    finally:
        _cleanup(max_customer)
        _vacuum(ctx)
        for path in (large, small):
            path.unlink(missing_ok=True)

    rate = n / first["seconds"]
    applies = ctx.scale == TARGET_SCALE
    size = (
        f"{n:,} purchases ({first['lines']:,} lines, {large_size_mb(first):.0f} MB) into "
        f"{ctx.customers:,} customers; memory also at {n // 10:,} purchases"
    )
    counts = first["counts"]
    notes = [
        f"First import: {counts['created']:,} created, {counts['rejected']:,} rejected; customers "
        f"{counts['customers_created']:,} created, {counts['customers_matched']:,} matched.",
        "Bonuses posted: "
        + ", ".join(f"{n:,} {kind}" for kind, n in sorted(first["movements"].items()))
        + "; the base's customers held 500 bonuses each before the import.",
        f"Re-import: {again['counts']['unchanged']:,} unchanged, "
        f"{again['counts']['created'] + again['counts']['updated']:,} written.",
        f"Baseline: iterparse {baseline['parse']:.1f} s + COPY {baseline['copy']:.1f} s "
        f"({baseline['rows']:,} rows).",
        "Load: the benchmark's own processes and PostgreSQL share the 2 cores.",
        "Foreign keys: "
        + (
            "checked once per batch (the role may set session_replication_role)."
            if row_checks_can_be_skipped()
            else "checked row by row (the role may not set session_replication_role)."
        ),
    ]
    memory_flat = first["maxrss_mb"] <= max(first_small["maxrss_mb"] * 1.25, 1)
    return [
        Result(
            name="POS import rate",
            value=rate,
            unit="purchases/s",
            baseline_name="iterparse + bare COPY",
            baseline_value=n / baseline["seconds"],
            data_size=size,
            target=f"≥ {TARGET_RATE:,} purchases/s with accrual and redemption",
            passed=(rate >= TARGET_RATE) if applies else None,
            notes=notes,
        ),
        Result(
            name="POS import time",
            value=first["seconds"],
            unit="s",
            baseline_name="iterparse + bare COPY",
            baseline_value=baseline["seconds"],
            data_size=size,
        ),
        Result(
            name="re-import of the same file",
            value=again["seconds"],
            unit="s",
            baseline_name="first import",
            baseline_value=first["seconds"],
            data_size=size,
            target="< 0.5 × the first import, nothing written",
            passed=(
                again["seconds"] < 0.5 * first["seconds"]
                and again["counts"]["created"] + again["counts"]["updated"] == 0
            )
            if applies
            else None,
        ),
        Result(
            name="peak memory, large file",
            value=first["maxrss_mb"],
            unit="MB",
            baseline_name=f"peak memory, {n // 10:,}-purchase file",
            baseline_value=first_small["maxrss_mb"],
            data_size=size,
            target=f"< {TARGET_MEMORY_MB} MB and flat in the file size",
            passed=(first["maxrss_mb"] < TARGET_MEMORY_MB and memory_flat) if applies else None,
        ),
    ]


def large_size_mb(result: dict) -> float:
    return result["bytes"] / 2**20


# -- the file ----------------------------------------------------------------------------------


def _identities(n: int) -> list[tuple[str | None, str | None]]:
    """(card, phone) of a sample of the base's customers."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT card_number, phone FROM customers_customer "
            "WHERE card_number IS NOT NULL OR phone IS NOT NULL ORDER BY id LIMIT %s",
            [max(n // 3, 100)],
        )
        return cursor.fetchall()


def _skus() -> list[tuple[str, str]]:
    from customers.models import Product

    return list(Product.objects.values_list("sku", "name")[:400])


def _phone_notation(phone: str, rnd: random.Random) -> str:
    d = phone[2:]  # +7XXXXXXXXXX -> XXXXXXXXXX
    return rnd.choice(
        [
            f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
            f"+7 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}",
            f"8{d}",
            phone,
        ]
    )


def _write(path: Path, store: str, n: int, identities, skus, *, seed: int) -> None:
    from customers.tests.pos_xml_builders import write_pos_file

    rnd = random.Random(seed)

    def purchases():
        for i in range(n):
            roll = rnd.random()
            card, phone = rnd.choice(identities)
            customer: dict | None
            if roll < 0.55 and card:
                customer = {"card": card}
            elif roll < 0.85 and phone:
                customer = {"phone": _phone_notation(phone, rnd)}
            elif roll < 0.90:
                customer = {"card": card, "phone": phone}
            elif roll < 0.95:
                customer = {"phone": f"+7999{seed}{i:06d}"[:12]}
            else:
                customer = None
            lines = []
            smallest = None
            for sku, name in rnd.sample(skus, rnd.choice((1, 1, 2, 2, 3, 4, 5))):
                price = rnd.randrange(3000, 150000) / 100
                smallest = price if smallest is None else min(smallest, price)
                lines.append(
                    {
                        "sku": sku,
                        "name": name,
                        "qty": rnd.choice((1, 1, 1, 2)),
                        "price": f"{price:.2f}",
                    }
                )
            purchase = {
                "id": f"{i:08d}",
                "datetime": f"2026-11-{1 + i % 20:02d}T{8 + i % 13:02d}:{i % 60:02d}:00+03:00",
                "customer": customer,
                "lines": lines,
            }
            if customer is not None and roll < 0.90 and rnd.random() < SPENDING:
                # Paid partly with bonuses: covered by the seeded balance (_seed_balances).
                purchase["bonus_spent"] = f"{min(smallest, rnd.randrange(500, 5000) / 100):.2f}"
            yield purchase

    write_pos_file(path, store, purchases())


# -- measured runs -----------------------------------------------------------------------------

_IMPORT = """
import json, sys, time
import django
django.setup()
from customers.pos_import import pos_file_import
began = time.perf_counter()
run = pos_file_import(path=sys.argv[1])
seconds = time.perf_counter() - began
from customers.models import PurchaseLine
from django.db.models import Count
from loyalty.models import BonusMovement
print(json.dumps({
    "seconds": seconds,
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork + exec, so this child would
    # report the benchmark process's own (larger) peak.
    "maxrss_mb": next(int(l.split()[1]) for l in open("/proc/self/status")
                      if l.startswith("VmHWM:")) / 1024,
    "status": run.status,
    "counts": {k: getattr(run, k) for k in ("created", "updated", "unchanged", "rejected",
               "customers_created", "customers_matched")},
    "movements": dict(BonusMovement.objects.filter(purchase__store__code=run.store_code)
                      .values_list("kind").annotate(n=Count("id")).order_by()),
    "lines": PurchaseLine.objects.filter(purchase__store__code=run.store_code).count(),
}))
"""


def _import(path: Path) -> dict:
    return run_import_child(_IMPORT, path)


def _baseline(path: Path) -> dict:
    """iterparse + clear() over the file, then a bare COPY of its purchase and line rows."""
    from django.db import connection
    from lxml import etree

    began = time.perf_counter()
    purchases, lines = io.StringIO(), io.StringIO()
    rows = 0
    for _, element in etree.iterparse(
        str(path), events=("end",), tag="purchase", resolve_entities=False, no_network=True
    ):
        pid = element.get("id")
        total = element.findtext("total")
        purchases.write(f"{pid}\t{element.get('datetime')}\t{element.get('status')}\t{total}\n")
        for line in element.iterfind("line"):
            lines.write(f"{pid}\t{line.get('sku')}\t{line.get('qty')}\t{line.get('price')}\n")
            rows += 1
        rows += 1
        element.clear()
        while element.getprevious() is not None:
            del element.getparent()[0]
    parsed = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_pos_purchase (external_id text, purchased_at timestamptz, "
            "status text, total numeric(12,2))"
        )
        cursor.execute(
            "CREATE TEMP TABLE bench_pos_line (external_id text, sku text, qty numeric(10,3), "
            "price numeric(12,2))"
        )
        purchases.seek(0)
        lines.seek(0)
        copy_began = time.perf_counter()
        cursor.copy_expert("COPY bench_pos_purchase FROM STDIN", purchases)
        cursor.copy_expert("COPY bench_pos_line FROM STDIN", lines)
        copied = time.perf_counter()
        cursor.execute("DROP TABLE bench_pos_purchase, bench_pos_line")
    return {
        "seconds": (parsed - began) + (copied - copy_began),
        "parse": parsed - began,
        "copy": copied - copy_began,
        "rows": rows,
    }


# The tables an import writes and the cleanup deletes from. PostgreSQL may run without
# autovacuum (the CI machines do): each run's million deleted purchases and lines would stay as
# dead rows in the tables and their indexes, and every later run would import slower.
VACUUMED = (
    "customers_purchase",
    "customers_purchaseline",
    "customers_customer",
    "customers_identifieralias",
    "customers_externalid",
    "loyalty_bonusmovement",
    "loyalty_bonusaccount",
    "loyalty_bonusconsumption",
)


def _vacuum(ctx: Context) -> None:
    """VACUUM (ANALYZE), as autovacuum would between two imports."""
    from customers.demo.pgload import vacuum_analyze

    vacuum_analyze(ctx.conn_params(), VACUUMED)


def _cleanup(max_customer: int) -> None:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        _empty_ledger(cursor)  # before the purchases and customers its rows reference
        cursor.execute(
            "DELETE FROM customers_purchaseline WHERE purchase_id IN (SELECT p.id FROM "
            "customers_purchase p JOIN customers_store s ON s.id = p.store_id "
            "WHERE s.code IN %s)",
            [(STORE_SMALL, STORE_LARGE)],
        )
        cursor.execute(
            "DELETE FROM customers_purchase WHERE store_id IN "
            "(SELECT id FROM customers_store WHERE code IN %s)",
            [(STORE_SMALL, STORE_LARGE)],
        )
        cursor.execute("DELETE FROM customers_store WHERE code IN %s", [(STORE_SMALL, STORE_LARGE)])
        cursor.execute("DELETE FROM customers_externalid WHERE customer_id > %s", [max_customer])
        cursor.execute(
            "DELETE FROM customers_identifieralias WHERE customer_id > %s", [max_customer]
        )
        _delete_customers_above(cursor, max_customer)
        cursor.execute(
            "DELETE FROM customers_importissue WHERE run_id IN (SELECT id FROM "
            "customers_importrun WHERE store_code IN %s)",
            [(STORE_SMALL, STORE_LARGE)],
        )
        cursor.execute(
            "DELETE FROM customers_importrun WHERE store_code IN %s", [(STORE_SMALL, STORE_LARGE)]
        )


def _seed_balances() -> None:
    """Every customer of the base holds SEED_BALANCE bonuses (one campaign lot each), so the
    file's spends are covered and the import both accrues and redeems. The ledger tables hold
    nothing else of the dataset's: they are emptied first and again by _cleanup."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        _empty_ledger(cursor)
        cursor.execute(
            "INSERT INTO loyalty_bonusmovement (customer_id, kind, amount, idempotency_key, "
            "created_at, channel, reason, available_at, expires_at, is_pending, remaining, "
            "status, campaign_ref) "
            "SELECT id, 'campaign', %s, 'bench-seed:' || id, now(), 'bench', '', now(), "
            "now() + interval '365 days', false, %s, '', 'bench' FROM customers_customer",
            [SEED_BALANCE, SEED_BALANCE],
        )
        cursor.execute(
            "INSERT INTO loyalty_bonusaccount (customer_id, balance, pending, debt, updated_at) "
            "SELECT id, %s, 0, 0, now() FROM customers_customer",
            [SEED_BALANCE],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE loyalty_bonusmovement")
        cursor.execute("ANALYZE loyalty_bonusaccount")


def _empty_ledger(cursor) -> None:
    cursor.execute("TRUNCATE loyalty_bonusconsumption, loyalty_bonusmovement, loyalty_bonusaccount")


def _delete_customers_above(cursor, max_customer: int) -> None:
    """Delete the customers the benchmark created (ids above `max_customer`).

    A plain DELETE runs each referencing foreign key's check once per customer, and a
    referencing table without an index usable for its customer column (a partial one is not) is
    then read whole once per customer: tens of thousands of scans. Where the role may skip the
    per-row checks (pharmacrm.references), the same guarantee is given set-based instead: the
    rows are locked (FOR UPDATE waits out anyone referencing them right now and holds off anyone
    new), every referencing table is checked once, and only then are the rows deleted with the
    per-row triggers off.
    """
    from pharmacrm.references import row_checks_can_be_skipped, row_checks_off

    if not row_checks_can_be_skipped():
        cursor.execute("DELETE FROM customers_customer WHERE id > %s", [max_customer])
        return
    cursor.execute(
        "SELECT id FROM customers_customer WHERE id > %s ORDER BY id FOR UPDATE", [max_customer]
    )
    cursor.execute(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "WHERE c.contype = 'f' AND c.confrelid = 'customers_customer'::regclass"
    )
    for table, column in cursor.fetchall():
        cursor.execute(f'SELECT count(*) FROM {table} WHERE "{column}" > %s', [max_customer])
        if cursor.fetchone()[0]:
            raise RuntimeError(
                f"Rows of {table} refer to customers the benchmark created: clean up by hand."
            )
    with row_checks_off():
        cursor.execute("DELETE FROM customers_customer WHERE id > %s", [max_customer])
