"""Load demo data: the service behind ``manage.py seed_demo`` (and ``setup_demo``, the benchmarks).

``demo_seed`` creates stores and products with the ORM, then customers, families, external ids,
consents, two years of purchases with their lines, and a few reservations through the generator:

- on PostgreSQL in bulk: worker processes stream ``COPY`` text, secondary indexes and constraints
  of the big tables are dropped first and rebuilt after when those tables are (nearly) empty,
  sequences are moved past the new ids, tables are vacuumed and analysed;
- on PostgreSQL inside a transaction the caller holds (tests, ``setup_demo`` under ``atomic``):
  ``COPY`` on the caller's connection, indexes in place;
- on other databases (the embedded SQLite demo) with ``executemany`` in one transaction.

Either way, the same seed and as-of time on the same starting base give the same rows.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import NOT_PROVIDED
from django.utils import timezone

from customers.models import (
    Consent,
    Customer,
    ExternalId,
    FamilyMember,
    Product,
    Purchase,
    PurchaseLine,
    PurchaseType,
    Reservation,
    Store,
)

from . import catalogue as cat
from . import generator as gen
from . import parallel, pgload

DEFAULT_SEED = 2026
# Disk needed per customer at full scale, tables and indexes of ~10 purchases and ~25 lines each
# plus WAL headroom (1,000,000 customers take 10-13 GB in PostgreSQL).
BYTES_PER_CUSTOMER = 13 * 1024
# Rows per customer the generator produces on average (measured), for decisions made up front.
EXPECTED_PER_CUSTOMER = {
    "customer": 1.0,
    "family": 0.5,
    "external_id": 0.83,
    "consent": 2.25,
    "purchase": 9.8,
    "line": 24.7,
    "reservation": 0.004,
}
MODELS = {
    "customer": Customer,
    "family": FamilyMember,
    "external_id": ExternalId,
    "consent": Consent,
    "purchase": Purchase,
    "line": PurchaseLine,
    "reservation": Reservation,
}
# Tables whose secondary indexes and constraints are rebuilt rather than maintained row by row.
BULK_TABLES = ("customer", "family", "external_id", "consent", "purchase", "line")
PURCHASE_TYPES = {"retail": "Розничная продажа", "preorder": "Предзаказ", "delivery": "Доставка"}


class SeedRefused(Exception):
    """The load was not started, and nothing was changed; the message says why."""


@dataclass
class SeedResult:
    rows: dict[str, int]  # per database table
    elapsed: float
    backend: str
    phases: dict[str, float] = field(default_factory=dict)
    behaviours: dict[str, int] = field(default_factory=dict)
    worker_peak_rss_kb: list[int] = field(default_factory=list)
    stores: int = 0
    products: int = 0
    indexes_rebuilt: list[str] = field(default_factory=list)


def demo_seed(
    *,
    customers: int,
    seed: int = DEFAULT_SEED,
    append: bool = False,
    workers: int | None = None,
    as_of: dt.datetime | dt.date | None = None,
    out: Callable[[str], None] = lambda _: None,
) -> SeedResult:
    """Load ``customers`` demo customers with their history; refuse (``SeedRefused``) unless the
    base holds no customers yet or ``append`` is set, in which case they are added with fresh ids.

    The same ``seed`` and ``as_of`` on the same starting base give the same rows. ``as_of``
    (default: now) is the moment the history ends: a date means the end of that day, in the
    chain's time zone. Stores and products are created (or reused, by code and SKU) first; if
    the load itself fails, none of its rows is kept.
    """
    started = time.perf_counter()
    if customers < 1:
        raise SeedRefused("--customers must be at least 1.")
    existing = Customer.objects.count()
    if existing and not append:
        raise SeedRefused(
            f"The database already holds {existing:,} customers: nothing was changed. "
            "Use --append to add demo customers to them."
        )
    postgres = connection.vendor == "postgresql"
    _check_disk_space(customers)
    targets = _copy_targets()
    now, today = _as_of(as_of)

    with transaction.atomic():
        stores = _ensure_stores(customers)
        products = _ensure_products()
        purchase_types = _ensure_purchase_types()
    out(f"{len(stores)} stores, {len(products)} products in the assortment.")
    taken = _taken_identifiers(customers) if existing else {}

    if postgres:
        with _native_cursor() as cursor:
            first_ids = {t: pgload.next_id(cursor, targets[t][0]) for t in gen.TABLES}
    else:
        first_ids = {t: _next_id_generic(targets[t][0]) for t in gen.TABLES}

    spec = gen.Spec(
        seed=seed,
        customers=customers,
        first_ids=first_ids,
        today=today,
        now_utc=int(now.timestamp()),
        chain_zone=settings.TIME_ZONE,
        stores=tuple(gen.StoreSpec(s.id, s.city, s.time_zone) for s in stores),
        products=products,
        purchase_types=purchase_types,
        timestamp_suffix="+00" if postgres else "",
        taken_phones=frozenset(taken.get("phone", ())),
        taken_cards=frozenset(taken.get("card", ())),
        taken_external_ids=frozenset(taken.get("external", ())),
    )
    if postgres and connection.in_atomic_block:
        # Separate connections would not see the caller's uncommitted rows, and dropping indexes
        # would lock its tables: load on the caller's connection, indexes in place.
        result = _load_postgresql_in_transaction(spec, targets, out=out)
    elif postgres:
        result = _load_postgresql(spec, targets, workers=workers, out=out)
    else:
        result = _load_executemany(spec, targets, out=out)
    result.stores, result.products = len(stores), len(products)
    result.elapsed = time.perf_counter() - started
    return result


def spec_for_files(
    *, customers: int, seed: int, as_of: dt.datetime | dt.date | None, timestamp_suffix: str = "+00"
) -> gen.Spec:
    """The ``Spec`` ``demo_seed`` would use on an empty database with the stores and products
    already in place: the benchmark writes the same rows to files with it."""
    now, today = _as_of(as_of)
    stores = list(Store.objects.filter(code__in=[c for c, *_ in _store_plan(customers)]))
    skus = [sku for sku, *_ in _product_plan()]
    by_sku = {p.sku: p for p in Product.objects.filter(sku__in=skus)}
    return gen.Spec(
        seed=seed,
        customers=customers,
        first_ids=dict.fromkeys(gen.TABLES, 1),
        today=today,
        now_utc=int(now.timestamp()),
        chain_zone=settings.TIME_ZONE,
        stores=tuple(
            gen.StoreSpec(s.id, s.city, s.time_zone) for s in sorted(stores, key=lambda s: s.code)
        ),
        products=_product_specs(by_sku),
        purchase_types={
            pt.code: pt.id for pt in PurchaseType.objects.filter(code__in=PURCHASE_TYPES)
        },
        timestamp_suffix=timestamp_suffix,
    )


def copy_targets() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Logical table -> (database table, columns the generator writes, in order)."""
    return _copy_targets()


# --- checks ------------------------------------------------------------------------------------


def _check_disk_space(customers: int) -> None:
    needed = customers * BYTES_PER_CUSTOMER
    path = _data_directory()
    free = shutil.disk_usage(path).free
    if free < needed:
        raise SeedRefused(
            f"Not enough disk space for {customers:,} demo customers: about "
            f"{needed / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free on {path}. "
            "Nothing was changed."
        )


def _data_directory() -> Path:
    """Where the database keeps its files, when this machine can see it; else the project."""
    if connection.vendor == "postgresql":
        try:
            # A savepoint: the caller's transaction survives the permission error.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SHOW data_directory")
                path = Path(cursor.fetchone()[0])
        except DatabaseError:  # not a superuser: the setting is hidden
            path = None
        if path is not None and path.is_dir():
            return path
    elif connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        if name and not name.startswith(":memory:") and "mode=memory" not in name:
            return Path(name).resolve().parent
    return Path(settings.BASE_DIR)


def _copy_targets() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Map the generator's columns to the models, refusing when the two have drifted apart."""
    targets = {}
    for logical, model in MODELS.items():
        fields = {f.attname: f for f in model._meta.concrete_fields}
        columns = []
        for attname in gen.COLUMNS[logical]:
            if attname not in fields:
                raise SeedRefused(
                    f"{model.__name__} has no field {attname!r} any more: update customers/demo."
                )
            columns.append(fields[attname].column)
        unfilled = [
            name
            for name, f in fields.items()
            if name not in gen.COLUMNS[logical] and not f.null and f.db_default is NOT_PROVIDED
        ]
        if unfilled:
            raise SeedRefused(
                f"{model.__name__} has required fields the demo generator does not fill "
                f"({', '.join(unfilled)}): give them a db_default or update customers/demo."
            )
        targets[logical] = (model._meta.db_table, tuple(columns))
    return targets


def _as_of(as_of: dt.datetime | dt.date | None) -> tuple[dt.datetime, dt.date]:
    """(now, today in the chain's zone) for an as-of moment or date."""
    real_now = timezone.now()
    if as_of is None:
        now = real_now
    elif isinstance(as_of, dt.datetime):
        now = as_of if timezone.is_aware(as_of) else timezone.make_aware(as_of)
    else:
        end = dt.datetime.combine(as_of, dt.time(23, 59, 59))
        now = min(timezone.make_aware(end), real_now)
    if now > real_now + dt.timedelta(minutes=1):
        raise SeedRefused("The demo history cannot end in the future.")
    return now, timezone.localdate(now)


# --- reference data: stores, products, purchase types ----------------------------------------


def _store_plan(customers: int) -> list[tuple[str, str, str, str, str]]:
    """(code, name, city, address, zone) of the stores: ~30 for a million customers, at least 5."""
    n_stores = max(5, min(60, round(30 * math.sqrt(customers / 1_000_000))))
    cities = sorted(cat.CITIES, key=lambda c: -c.weight)[
        : min(len(cat.CITIES), max(3, n_stores // 2))
    ]
    per_city = [1] * len(cities)
    rest = n_stores - len(cities)
    total = sum(c.weight for c in cities)
    exact = [c.weight * rest / total for c in cities]
    for i, x in enumerate(exact):
        per_city[i] += int(x)
    short = n_stores - sum(per_city)
    for i in sorted(range(len(cities)), key=lambda i: exact[i] - int(exact[i]), reverse=True)[
        :short
    ]:
        per_city[i] += 1
    plan = []
    for city, n in zip(cities, per_city, strict=True):
        for k in range(1, n + 1):
            street = cat.STREETS[(k * 7 + len(city.name)) % len(cat.STREETS)]
            house = (k * 13 + len(city.code) * 5) % 97 + 1
            plan.append(
                (
                    f"{city.code}-{k:02d}",
                    f"{cat.CHAIN_NAME} №{k}",
                    city.name,
                    f"{street}, {house}",
                    city.zone,
                )
            )
    return plan


def _ensure_stores(customers: int) -> list[Store]:
    plan = _store_plan(customers)
    Store.objects.bulk_create(
        [Store(code=c, name=n, city=city, address=a, time_zone=z) for c, n, city, a, z in plan],
        ignore_conflicts=True,
    )
    return list(Store.objects.filter(code__in=[p[0] for p in plan]).order_by("code"))


def _product_plan() -> list[tuple[str, str, cat.ProductLine, int | None, int]]:
    """(sku, name, product line, pack size, price in kopecks) for every SKU of the catalogue.

    SKUs follow the catalogue's order, so adding products at its end keeps earlier SKUs stable.
    """
    plan = []
    index = 0
    for line in cat.PRODUCT_LINES:
        for suffix, pack, price in line.variants:
            index += 1
            plan.append(
                (cat.ean13(f"4607{index:08d}"), f"{line.name} {suffix}", line, pack, price * 100)
            )
    return plan


def _product_specs(by_sku: dict[str, Product]) -> tuple[gen.ProductSpec, ...]:
    specs = []
    for sku, _name, line, _pack, price in _product_plan():
        product = by_sku[sku]
        weight = line.weight / len(line.variants)
        specs.append(
            gen.ProductSpec(
                id=product.id,
                price=price,
                weight=weight,
                season=line.season,
                chronic=line.chronic,
                split=line.split,
                rx=product.prescription_only,
            )
        )
    return tuple(specs)


def _ensure_products() -> tuple[gen.ProductSpec, ...]:
    plan = _product_plan()
    Product.objects.bulk_create(
        [
            Product(
                sku=sku,
                name=name,
                inn=line.inn,
                pack_size=pack,
                prescription_only=line.rx,
                category=line.category,
            )
            for sku, name, line, pack, _price in plan
        ],
        ignore_conflicts=True,
    )
    by_sku = {p.sku: p for p in Product.objects.filter(sku__in=[p[0] for p in plan])}
    return _product_specs(by_sku)


def _ensure_purchase_types() -> dict[str, int]:
    # Normally there from migration customers.0002; a base where one was deleted gets it back.
    out = {}
    for code, name in PURCHASE_TYPES.items():
        out[code] = PurchaseType.objects.get_or_create(code=code, defaults={"name": name})[0].id
    return out


def _taken_identifiers(customers: int) -> dict[str, set]:
    """Identifiers the new customers would get that existing customers already hold (--append).

    Demo identifiers are functions of the customer id, so they never collide among demo
    customers; this only guards against customers that came from elsewhere.
    """
    first = _first_customer_id()
    ids = range(first, first + customers)
    batch = 900 if connection.vendor == "sqlite" else 20_000
    taken: dict[str, set] = {"phone": set(), "card": set(), "external": set()}
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        phones = [gen.phone_for(i) for i in chunk]
        cards = [gen.card_for(i) for i in chunk]
        taken["phone"].update(
            Customer.objects.filter(phone__in=phones).values_list("phone", flat=True)
        )
        taken["card"].update(
            Customer.objects.filter(card_number__in=cards).values_list("card_number", flat=True)
        )
        for system, values in (
            ("app", [gen.app_id_for(i) for i in chunk]),
            ("site", [gen.site_id_for(i) for i in chunk]),
        ):
            found = ExternalId.objects.filter(system=system, external_id__in=values)
            taken["external"].update(
                (system, v) for v in found.values_list("external_id", flat=True)
            )
    return taken


def _first_customer_id() -> int:
    if connection.vendor == "postgresql":
        with _native_cursor() as cursor:
            return pgload.next_id(cursor, Customer._meta.db_table)
    return _next_id_generic(Customer._meta.db_table)


def _next_id_generic(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")
        largest = cursor.fetchone()[0]
        if connection.vendor == "sqlite":
            # AUTOINCREMENT never reuses ids, even of deleted rows: start past its counter too.
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            if row:
                largest = max(largest, row[0])
    return largest + 1


# --- loading ----------------------------------------------------------------------------------


@contextmanager
def _native_cursor() -> Iterator:
    """The psycopg2 cursor under Django's connection (its transaction, if one is open)."""
    with connection.cursor() as wrapper:
        yield wrapper.cursor


def _conn_params() -> dict:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    return {k: v for k, v in params.items() if isinstance(v, str | int | float)}


class _Progress:
    """Prints running counts at most every few seconds."""

    def __init__(self, total_customers: int, out: Callable[[str], None], every: float = 5.0):
        self.total = total_customers
        self.out = out
        self.every = every
        self.started = self.last = time.perf_counter()

    def __call__(self, rows: dict[str, int], force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        done = rows.get("customer", 0)
        self.out(
            f"  {done:,}/{self.total:,} customers ({done / self.total:.0%}), "
            f"{rows.get('purchase', 0):,} purchases, {rows.get('line', 0):,} lines "
            f"— {elapsed:.0f} s, {rows.get('purchase', 0) / elapsed:,.0f} purchases/s"
        )


def _load_postgresql(spec: gen.Spec, targets, *, workers: int | None, out) -> SeedResult:
    conn_params = _conn_params()
    result = SeedResult(rows={}, elapsed=0.0, backend="postgresql")
    phase = time.perf_counter()
    with pgload.session(conn_params) as cursor:
        rebuild = []
        for logical in BULK_TABLES:
            expected = int(EXPECTED_PER_CUSTOMER[logical] * spec.customers)
            # Rebuilding an index over the old rows too pays off while they are few.
            existing = pgload.count_up_to(cursor, targets[logical][0], expected // 4 + 1)
            if expected and existing * 4 < expected:
                rebuild.append(targets[logical][0])
        saved = pgload.capture(cursor, rebuild)
        cursor.execute("BEGIN")  # all dropped, or none
        pgload.drop(cursor, saved)
        cursor.execute("COMMIT")
    if not saved.is_empty():
        out(f"Dropped {len(saved.drops)} indexes and constraints on {', '.join(rebuild)}.")
    result.indexes_rebuilt = rebuild
    result.phases["prepare"] = time.perf_counter() - phase

    phase = time.perf_counter()
    progress = _Progress(spec.customers, out)
    workers = workers or parallel.default_workers()
    out(f"Generating and copying with {workers} worker processes...")
    try:
        stats = parallel.run(
            spec,
            parallel.CopyTarget(
                conn_params=conn_params,
                tables=targets,
                # One commit per stream at the end: no need to wait for each WAL flush.
                session_sql=("SET synchronous_commit = off",),
            ),
            workers=workers,
            progress=progress,
        )
        progress(stats.rows, force=True)
    finally:
        result.phases["copy"] = time.perf_counter() - phase
        if not saved.is_empty():
            phase = time.perf_counter()
            out("Rebuilding indexes and constraints...")
            try:
                failures = pgload.restore(conn_params, saved, connections=3)
            except BaseException:  # interrupted: leave the way back in a script
                _report_restore_failures(saved, [(s, "interrupted") for s in saved.statements()])
                raise
            result.phases["indexes"] = time.perf_counter() - phase
            if failures:
                _report_restore_failures(saved, failures)
    phase = time.perf_counter()
    with _native_cursor() as cursor:
        for table, _columns in targets.values():
            pgload.reset_sequence(cursor, table)
    out("Vacuuming and analysing...")
    pgload.vacuum_analyze(conn_params, [t for t, _ in targets.values()], connections=2)
    result.phases["vacuum+analyze"] = time.perf_counter() - phase
    result.rows = {targets[t][0]: n for t, n in stats.rows.items()}
    result.behaviours = stats.behaviours
    result.worker_peak_rss_kb = stats.worker_peak_rss_kb
    return result


def _report_restore_failures(saved: pgload.SavedSchema, failures: list[tuple[str, str]]) -> None:
    """Keep what could not be recreated in a script a person can run, and say where it is."""
    fd, path = tempfile.mkstemp(prefix="seed_demo_restore_", suffix=".sql")
    with os.fdopen(fd, "w") as script:
        script.write(
            "-- Indexes and constraints seed_demo dropped and could not recreate (after an\n"
            "-- interruption some may exist already: their statements then fail harmlessly).\n"
        )
        for statement, error in failures:
            script.write(f"-- {error}\n{statement};\n")
    message = (
        f"{len(failures)} indexes or constraints could not be recreated "
        f"(first: {failures[0][1]}). The statements are in {path}."
    )
    if all(error == "interrupted" for _, error in failures):
        sys.stderr.write(message + "\n")
        return
    raise SeedRefused(message)


def _load_postgresql_in_transaction(spec: gen.Spec, targets, *, out) -> SeedResult:
    result = SeedResult(rows=dict.fromkeys((t for t, _ in targets.values()), 0), elapsed=0.0,
                        backend="postgresql")  # fmt: skip
    phase = time.perf_counter()
    progress = _Progress(spec.customers, out)
    running = dict.fromkeys(gen.TABLES, 0)
    with _native_cursor() as cursor:
        for block, chunks in gen.iter_blocks(spec):
            for logical in gen.TABLES:
                text = chunks.get(logical)
                if text:
                    table, columns = targets[logical]
                    names = ", ".join(f'"{c}"' for c in columns)
                    cursor.copy_expert(
                        f'COPY "{table}" ({names}) FROM STDIN', io.BytesIO(text.encode())
                    )
            for logical, n in block.counts().items():
                running[logical] += n
            for behaviour, n in block.behaviours.items():
                result.behaviours[behaviour] = result.behaviours.get(behaviour, 0) + n
            progress(running)
        for table, _columns in targets.values():
            pgload.reset_sequence(cursor, table)
            cursor.execute(f'ANALYZE "{table}"')
    result.rows = {targets[t][0]: n for t, n in running.items()}
    result.phases["copy"] = time.perf_counter() - phase
    return result


def _load_executemany(spec: gen.Spec, targets, *, out) -> SeedResult:
    result = SeedResult(rows=dict.fromkeys((t for t, _ in targets.values()), 0), elapsed=0.0,
                        backend=connection.vendor)  # fmt: skip
    phase = time.perf_counter()
    quote = connection.ops.quote_name
    inserts = {
        logical: f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
        for logical, (table, columns) in targets.items()
    }
    progress = _Progress(spec.customers, out)
    running = dict.fromkeys(gen.TABLES, 0)
    with transaction.atomic(), connection.cursor() as cursor:
        for block, chunks in gen.iter_blocks(spec):
            for logical in gen.TABLES:
                text = chunks.get(logical)
                if not text:
                    continue
                rows = [
                    [None if value == gen.NULL else value for value in line.split("\t")]
                    for line in text[:-1].split("\n")
                ]
                cursor.executemany(inserts[logical], rows)
                running[logical] += len(rows)
            for behaviour, n in block.behaviours.items():
                result.behaviours[behaviour] = result.behaviours.get(behaviour, 0) + n
            progress(running)
    result.rows = {targets[t][0]: n for t, n in running.items()}
    result.phases["insert"] = time.perf_counter() - phase
    return result
