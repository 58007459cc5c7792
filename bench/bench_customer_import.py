"""customer_import: the app's customer-base export into the scale's customer base, against
csv.reader + bare COPY.

Measured (each import in a child process, so its peak memory is its own):
- a CSV file of N rows (N = the scale's customers, or ``BENCH_CUSTOMER_IMPORT_ROWS``) imported with
  source ``app``: rows per second, time, peak memory. Every other row is a customer of the base as
  the app knows them (same phone, email and card, same name; one in ten with a new address; the
  app's id; consents as of registration), the rows between are new people;
- the same file imported again: every row matched, nothing written.
Baseline, in the same run: ``csv.reader`` over the same file plus a bare ``COPY`` of N customer rows
into an unindexed temporary table (the floor for reading and writing that many rows).

Afterwards the benchmark deletes what it added and restores the customers it changed (from a copy
taken before), so the dataset stays the scale's dataset for the other benchmarks.
Set ``BENCH_PROFILE=1`` to write a cProfile of the first import to ``bench/data/``.
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

from bench.harness import Context, Result, run_import_child

ORDER = 30
DESCRIPTION = "customer-base CSV import (app export) vs csv.reader + bare COPY"
TARGET_SECONDS = 300  # for 1,000,000 rows: "One customer across every channel", item 5
TARGET_ROWS = 1_000_000
NEW_ID_BASE = 50_000_000  # new people get the demo generator's identifiers of ids past the base
BACKUP = "bench_customer_import_backup"
STATE = "bench_customer_import_state"
HEADER = (
    "id;phone;email;card_number;last_name;first_name;middle_name;birth_date;sex;city;street;"
    "house;flat;household_size;consent_sms;consent_email;consent_personal_data;registered_at"
)
_CUSTOMER_COLUMNS = (
    "id, phone, email, card_number, last_name, first_name, middle_name, birth_date, sex, city, "
    "street, house, flat, household_size, created_at"
)


def run(ctx: Context) -> list[Result]:
    ctx.ensure_dataset()
    _restore()  # leftovers of an interrupted earlier run
    n = int(os.environ.get("BENCH_CUSTOMER_IMPORT_ROWS") or ctx.customers)
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.data_dir / f"customers_{ctx.scale}_{n}.csv"
    print(f"   Writing a customer file of {n:,} rows (not timed)...")
    matching = _write(path, n)
    _backup(matching)
    load_before = os.getloadavg()
    try:
        print("   Baseline: csv.reader + bare COPY...")
        baseline = _baseline(path)
        print("   Importing the file...")
        first = _import(path, profile=os.environ.get("BENCH_PROFILE") == "1", ctx=ctx)
        print("   Importing the file again...")
        again = _import(path)
    finally:
        _restore()
        path.unlink(missing_ok=True)
    load_after = os.getloadavg()

    rate = n / first["seconds"]
    applies = n >= TARGET_ROWS and not ctx.in_ci
    budget = TARGET_SECONDS * n / TARGET_ROWS
    c = first["counts"]
    size = (
        f"{n:,} rows ({first['bytes'] / 2**20:.0f} MB CSV; {matching:,} customers of the base, "
        f"{n - matching:,} new people) into {ctx.customers:,} customers"
    )
    notes = [
        f"First import: rows {c['created']:,} created, {c['updated']:,} updated, "
        f"{c['unchanged']:,} unchanged, {c['rejected']:,} rejected, {c['warnings']:,} warnings; "
        f"customers {c['customers_created']:,} created, {c['customers_matched']:,} matched, "
        f"{c['customers_merged']:,} merged; {first['consents']:,} consent rows written.",
        f"Re-import: {again['counts']['unchanged']:,} unchanged, "
        f"{again['counts']['created'] + again['counts']['updated']:,} written, "
        f"{again['consents']:,} consent rows written.",
        f"Baseline: csv.reader {baseline['read']:.1f} s + COPY {baseline['copy']:.1f} s.",
        f"Load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} (2 cores shared "
        "with PostgreSQL and whatever else runs).",
    ]
    return [
        Result(
            name="customer import rate",
            value=rate,
            unit="rows/s",
            baseline_name="csv.reader + bare COPY",
            baseline_value=n / baseline["seconds"],
            data_size=size,
            target=f"≥ {TARGET_ROWS / TARGET_SECONDS:,.0f} rows/s (1M rows < 5 min)",
            passed=(rate >= TARGET_ROWS / TARGET_SECONDS) if applies else None,
            notes=notes,
        ),
        Result(
            name="customer import time",
            value=first["seconds"],
            unit="s",
            baseline_name="csv.reader + bare COPY",
            baseline_value=baseline["seconds"],
            data_size=size,
            target=f"< {budget:,.0f} s",
            passed=(first["seconds"] < budget) if applies else None,
        ),
        Result(
            name="re-import of the same file",
            value=again["seconds"],
            unit="s",
            baseline_name="first import",
            baseline_value=first["seconds"],
            data_size=size,
            target="nothing written",
            passed=(
                again["counts"]["created"] + again["counts"]["updated"] + again["consents"] == 0
            ),
        ),
        Result(
            name="peak memory",
            value=first["maxrss_mb"],
            unit="MB",
            data_size=size,
            target="< 300 MB",
            passed=(first["maxrss_mb"] < 300) if applies else None,
        ),
    ]


# -- the file ----------------------------------------------------------------------------------


def _write(path: Path, n: int) -> int:
    """Write the file; returns how many rows name customers of the base."""
    from django.db import connection

    from customers.demo import catalogue as cat
    from customers.demo.generator import app_id_for, card_for, phone_for

    matching = n // 2
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        with connection.chunked_cursor() as cursor:
            cursor.execute(
                f"SELECT {_CUSTOMER_COLUMNS} FROM customers_customer ORDER BY id LIMIT %s",
                [matching],
            )
            base = iter(cursor)
            written = 0
            for i in range(n):
                row = next(base, None) if i % 2 == 0 else None
                if row is not None:
                    written += 1
                    writer.writerow(_known_row(row, app_id_for, i))
                else:
                    cid = NEW_ID_BASE + i
                    writer.writerow(_new_row(cid, i, cat, app_id_for, card_for, phone_for))
    return written


def _known_row(row, app_id_for, i: int) -> list:
    (
        cid,
        phone,
        email,
        card,
        last,
        first,
        middle,
        birth,
        sex,
        city,
        street,
        house,
        flat,
        size,
        at,
    ) = row
    if cid % 10 == 3:  # moved house
        street, house, flat = "Новая улица", str(1 + cid % 90), str(1 + cid % 200)
    if phone and i % 4 == 0:
        phone = f"8 ({phone[2:5]}) {phone[5:8]}-{phone[8:10]}-{phone[10:]}"
    return [
        app_id_for(cid),
        phone or "",
        email or "",
        card or "",
        last,
        first,
        middle,
        birth.strftime("%d.%m.%Y") if birth else "",
        sex,
        city,
        street,
        house,
        flat,
        size or "",
        "да" if cid % 3 else "нет",
        "да" if email else "",
        "да",
        at.date().isoformat(),
    ]


def _new_row(cid: int, i: int, cat, app_id_for, card_for, phone_for) -> list:
    female = i % 2 == 1
    first = (cat.FEMALE_FIRST if female else cat.MALE_FIRST)[i % 7]
    last = cat.SURNAMES[i % len(cat.SURNAMES)] + ("а" if female else "")
    city = cat.CITIES[i % len(cat.CITIES)]
    return [
        app_id_for(cid),
        phone_for(cid),
        f"new{cid}@example.org" if i % 3 else "",
        card_for(cid) if i % 5 else "",
        last,
        first,
        "",
        f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "F" if female else "M",
        city.name,
        cat.STREETS[i % len(cat.STREETS)],
        str(1 + i % 120),
        str(1 + i % 300),
        str(1 + i % 4),
        "yes" if i % 4 else "no",
        "yes" if i % 3 else "",
        "yes",
        f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}",
    ]


# -- measured runs -----------------------------------------------------------------------------

_IMPORT = """
import cProfile, json, sys, time
import django


def peak_mb():
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across fork + exec, so a child
    # would report the benchmark process's own peak when that is higher.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


django.setup()
from customers.customer_import import customers_import
from customers.models import Consent
consents = Consent.objects.count()
profile = cProfile.Profile() if sys.argv[2] else None
began = time.perf_counter()
if profile:
    profile.enable()
run = customers_import(file=sys.argv[1], source="app")
seconds = time.perf_counter() - began
if profile:
    profile.disable()
    profile.dump_stats(sys.argv[2])
print(json.dumps({
    "seconds": seconds,
    "maxrss_mb": peak_mb(),
    "status": run.status,
    "error": run.error,
    "counts": {k: getattr(run, k) for k in ("records", "created", "updated", "unchanged",
               "rejected", "warnings", "customers_created", "customers_matched",
               "customers_merged")},
    "consents": Consent.objects.count() - consents,
}))
"""


def _import(path: Path, *, profile: bool = False, ctx: Context | None = None) -> dict:
    stats = str(ctx.data_dir / f"customer_import_{ctx.scale}.prof") if profile and ctx else ""
    return run_import_child(_IMPORT, path, stats)


def _baseline(path: Path) -> dict:
    """csv.reader over the file, then a bare COPY of as many customer rows as it has."""
    from django.db import connection

    began = time.perf_counter()
    buffer = io.StringIO()
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        next(reader)
        rows = 0
        for row in reader:
            buffer.write("\t".join(row[1:14]) + "\n")
            rows += 1
    read = time.perf_counter() - began
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_customer_copy (phone text, email text, card_number text, "
            "last_name text, first_name text, middle_name text, birth_date text, sex text, "
            "city text, street text, house text, flat text, household_size text)"
        )
        copy_began = time.perf_counter()
        cursor.copy_expert("COPY bench_customer_copy FROM STDIN", buffer)
        copied = time.perf_counter() - copy_began
        cursor.execute("DROP TABLE bench_customer_copy")
    return {"seconds": read + copied, "read": read, "copy": copied, "rows": rows}


# -- leaving the dataset as it was -------------------------------------------------------------

_TABLES = (
    "customers_consent",
    "customers_externalid",
    "customers_identifieralias",
    "customers_duplicatesuspicion",
    "customers_importissue",
    "customers_importrun",
    "customers_mergerecord",
    "customers_customer",
)


def _backup(matching: int) -> None:
    """Remember the highest id of every table the import writes, and copy the customers it may
    change (the first `matching` by id)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {STATE} (name text PRIMARY KEY, max_id bigint NOT NULL)")
        for table in _TABLES:
            cursor.execute(
                f"INSERT INTO {STATE} SELECT %s, coalesce(max(id), 0) FROM {table}", [table]
            )
        cursor.execute(
            f"CREATE TABLE {BACKUP} AS SELECT * FROM customers_customer ORDER BY id LIMIT %s",
            [matching],
        )


def _restore() -> None:
    from django.db import connection, transaction

    from customers.models import Customer

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [STATE])
        if cursor.fetchone()[0] is None:
            return
    print("   Restoring the dataset...")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT name, max_id FROM {STATE}")
        max_ids = dict(cursor.fetchall())
        for table in _TABLES:  # children first
            cursor.execute(f"DELETE FROM {table} WHERE id > %s", [max_ids[table]])
        cursor.execute("SELECT to_regclass(%s)", [BACKUP])
        if cursor.fetchone()[0] is not None:
            # Every column but the id comes back as it was.
            columns = [f.column for f in Customer._meta.concrete_fields if f.column != "id"]
            assignments = ", ".join(f"{c} = b.{c}" for c in columns)
            cursor.execute(
                f"UPDATE customers_customer c SET {assignments} FROM {BACKUP} b "
                "WHERE b.id = c.id AND c.updated_at IS DISTINCT FROM b.updated_at"
            )
            cursor.execute(f"DROP TABLE {BACKUP}")
        cursor.execute(f"DROP TABLE {STATE}")
