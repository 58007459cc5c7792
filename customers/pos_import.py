"""POS XML import: the database side of `customers.pos_xml` (../shared/formats/pos-xml.md).

A file is first scanned whole (well-formed, this format, checksum): a broken file is refused
before anything is stored. It is then read as a stream in batches; each batch is one transaction
under the identity lock: unchanged purchases (same digest) are skipped untouched, customers are
resolved set-based, new purchases inserted and changed ones updated with their lines replaced.
One bad purchase is reported and skipped, never stopping the good ones; a purchase delivered
twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import queue
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .identity import IdentityRecord, Outcome, personal_data_errors
from .identity_batch import BatchResolver, identity_lock
from .models import ImportIssue, ImportRun, Purchase, PurchaseLine, PurchaseType, Source, Store
from .pos_xml import (
    PosFileError,
    PosPurchase,
    PosRejection,
    iter_pos_purchases,
    scan_pos_file,
)
from .services import products_ensure_from_lines

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
# The columns of a purchase row as _write builds it, after (source, store, id): a repeated
# purchase may change any of them; its unique key (source, store, external id) never changes.
ROW_FIELDS = (
    "customer_id",
    "purchased_at",
    "purchase_date",
    "purchase_type_id",
    "status",
    "total",
    "discount",
    "bonus_spent",
    "order_ref",
    "import_digest",
)


@dataclass(frozen=True)
class _Rejected:
    purchase_id: str | None
    position: int
    field: str
    reason: str


def match_order_refs(refs: set[str]) -> dict[str, Any]:
    """Orders placed in the app or on the site that these till sales fulfil, by reference.

    App and site orders arrive with the API: until then no reference matches, and each purchase
    carrying one is imported as an ordinary purchase, keeps the reference and is reported as a
    warning. The API issue fills this in (and completes the matched orders).
    """
    return {}


def purchase_digest(purchase: PosPurchase) -> str:
    """A fingerprint of everything the file says about a purchase."""
    customer = purchase.customer
    parts: list[Any] = [
        purchase.purchase_id,
        purchase.purchased_at.isoformat(),
        purchase.type_code,
        purchase.status,
        purchase.order_ref,
        purchase.discount,
        purchase.bonus_spent,
        purchase.total,
    ]
    if customer is not None:
        parts += [
            customer.card,
            customer.phone,
            customer.email,
            customer.last_name,
            customer.first_name,
            customer.birth_date,
        ]
    parts += [(line.sku, line.name, line.qty, line.price) for line in purchase.lines]
    return hashlib.md5(repr(parts).encode(), usedforsecurity=False).hexdigest()


def pos_file_import(
    *,
    path: str | Path,
    file_name: str | None = None,
    user=None,
    batch_size: int = BATCH_SIZE,
) -> ImportRun:
    """Import one POS export file; returns its ImportRun (status done, or failed if refused).

    Re-importing the same file, or a renamed copy, changes nothing (every purchase unchanged).
    """
    path = Path(path)
    run = ImportRun.objects.create(
        kind=ImportRun.Kind.POS_XML,
        file_name=file_name or path.name,
        source=Source.POS,
        started_by=user,
    )
    try:
        scan = scan_pos_file(path)
    except PosFileError as exc:
        run.status = ImportRun.Status.FAILED
        run.error = str(exc)
        run.finished_at = timezone.now()
        run.save()
        return run
    run.checksum = scan.sha256
    run.store_code = scan.header.store_code
    run.save(update_fields=["checksum", "store_code"])

    store, store_created = Store.objects.get_or_create(
        code=scan.header.store_code, defaults={"name": scan.header.store_code}
    )
    importer = _FileImporter(run=run, store=store)
    if store_created:
        importer.warn(
            None,
            None,
            "store",
            _("Unknown store code “%(code)s”: store created.") % {"code": store.code},
        )
    for batch in _prefetched(_batches(iter_pos_purchases(path), batch_size)):
        importer.import_batch(batch)
    importer.save_issues()  # the store warning of a file with no purchase at all
    run.status = ImportRun.Status.DONE
    run.finished_at = timezone.now()
    run.save()
    return run


def _prefetched(batches: Iterator[list], depth: int = 1) -> Iterator[list]:
    """The same batches, parsed ahead in a thread while the caller writes the previous ones.

    Writing waits on PostgreSQL (COPY, commit) with the GIL released; parsing fills that time.
    Errors in the parser are raised in the caller; the caller's language is the parser's, so
    rejection reasons read as they would without the thread.
    """
    done = object()
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    language = translation.get_language()

    def produce() -> None:
        try:
            with translation.override(language):
                for batch in batches:
                    while not stop.is_set():
                        try:
                            buffer.put(batch, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
        except BaseException as exc:  # handed to the consumer, re-raised there
            buffer.put(exc)
            return
        buffer.put(done)

    thread = threading.Thread(target=produce, name="pos-parse", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _batches(items: Iterable[PosPurchase | PosRejection], size: int) -> Iterator[list]:
    """Batches of at most `size`, split so no purchase id repeats inside one batch: a later
    copy of a purchase in the same file then updates the earlier one, as across files."""
    batch: list = []
    seen: set[str] = set()
    for item in items:
        key = getattr(item, "purchase_id", None)
        if len(batch) >= size or (key is not None and key in seen):
            yield batch
            batch, seen = [], set()
        batch.append(item)
        if key is not None:
            seen.add(key)
    if batch:
        yield batch


class _FileImporter:
    def __init__(self, *, run: ImportRun, store: Store) -> None:
        self.run = run
        self.store = store
        self.types = dict(PurchaseType.objects.values_list("code", "pk"))
        self.products: dict[str, int] = {}
        self.issues: list[ImportIssue] = []
        self.counts: Counter[str] = Counter()

    def warn(self, purchase_id: str | None, position: int | None, field: str, message: str):
        self.issues.append(
            ImportIssue(
                run=self.run,
                level=ImportIssue.Level.WARNING,
                record_id=purchase_id or "",
                position=position,
                field=field,
                message=message,
            )
        )
        self.counts["warnings"] += 1

    def reject(self, item: _Rejected | PosRejection) -> None:
        self.issues.append(
            ImportIssue(
                run=self.run,
                level=ImportIssue.Level.ERROR,
                record_id=item.purchase_id or "",
                position=item.position,
                field=item.field,
                message=item.reason,
            )
        )
        self.counts["rejected"] += 1

    def save_issues(self) -> None:
        ImportIssue.objects.bulk_create(self.issues, batch_size=1000)
        self.issues = []

    # -- one batch -------------------------------------------------------------------------------

    def import_batch(self, batch: list[PosPurchase | PosRejection]) -> None:
        good: list[PosPurchase] = []
        for item in batch:
            if isinstance(item, PosRejection):
                self.reject(item)
                continue
            problem = self._check(item)
            if problem:
                self.reject(problem)
            else:
                good.append(item)
        self.counts["records"] += len(batch)
        with transaction.atomic():
            identity_lock()
            self._write(good)
            self.save_issues()
            self._save_counts()

    def _check(self, purchase: PosPurchase) -> _Rejected | None:
        """What the parser cannot know: the reference list and the card's field sizes."""
        if purchase.type_code not in self.types:
            return _Rejected(
                purchase.purchase_id,
                purchase.position,
                "type",
                _("Unknown purchase type “%(code)s”.") % {"code": purchase.type_code},
            )
        if purchase.customer is not None:
            data = {
                "last_name": purchase.customer.last_name,
                "first_name": purchase.customer.first_name,
            }
            for name, message in personal_data_errors(data).items():
                return _Rejected(
                    purchase.purchase_id, purchase.position, f"customer.{name}", message
                )
        for index, line in enumerate(purchase.lines, start=1):
            if len(line.sku) > 64 or len(line.name) > 255:
                return _Rejected(
                    purchase.purchase_id,
                    purchase.position,
                    f"line[{index}].sku" if len(line.sku) > 64 else f"line[{index}].name",
                    _("Too long."),
                )
        return None

    def _write(self, purchases: list[PosPurchase]) -> None:
        if not purchases:
            return
        digests = [purchase_digest(p) for p in purchases]
        existing = {
            external_id: (pk, digest)
            for external_id, pk, digest in _stored_purchases(
                self.store.pk, [p.purchase_id for p in purchases]
            )
        }
        todo = [
            (p, d)
            for p, d in zip(purchases, digests, strict=True)
            if existing.get(p.purchase_id, (None, None))[1] != d
        ]
        self.counts["unchanged"] += len(purchases) - len(todo)
        if not todo:
            return

        resolver = BatchResolver()
        customer_ids = resolver.resolve([_identity_record(p) for p, _digest in todo])
        self.counts["customers_created"] += resolver.counts[Outcome.CREATED]
        self.counts["customers_matched"] += resolver.counts[Outcome.MATCHED]
        self.counts["customers_merged"] += resolver.counts["merged_customers"]
        self.counts["suspicions"] += resolver.counts["suspicions"]

        wanted = {line.sku: line.name for p, _digest in todo for line in p.lines}
        missing = {sku: name for sku, name in wanted.items() if sku not in self.products}
        if missing:
            self.products.update(products_ensure_from_lines(missing))

        refs = {p.order_ref for p, _digest in todo if p.order_ref}
        orders = match_order_refs(refs) if refs else {}
        for p, _digest in todo:
            if p.order_ref and p.order_ref not in orders:
                self.warn(
                    p.purchase_id,
                    p.position,
                    "order_ref",
                    _("Order “%(ref)s” is not known: imported as an ordinary purchase.")
                    % {"ref": p.order_ref},
                )

        now = timezone.now()
        local_zone = timezone.get_default_timezone()  # purchase dates are in the chain's zone
        store_id = self.store.pk
        new_rows: list[tuple] = []
        new_lines: list[list[tuple]] = []
        changed: list[tuple[int, tuple, list[tuple]]] = []
        for (p, digest), customer_id in zip(todo, customer_ids, strict=True):
            row = (
                p.purchase_id,
                customer_id,
                p.purchased_at,
                p.purchased_at.astimezone(local_zone).date(),
                self.types[p.type_code],
                p.status,
                p.total,
                p.discount,
                p.bonus_spent,
                p.order_ref,
                digest,
            )
            lines = [
                (self.products[line.sku], line.qty, line.price, line.amount) for line in p.lines
            ]
            if p.purchase_id in existing:
                changed.append((existing[p.purchase_id][0], row, lines))
            else:
                new_rows.append(row)
                new_lines.append(lines)
        if new_rows:
            _insert_purchases(store_id, new_rows, new_lines, now)
        if changed:
            _update_purchases(changed, now)
        self.counts["created"] += len(new_rows)
        self.counts["updated"] += len(changed)

    def _save_counts(self) -> None:
        run = self.run
        for name in ImportRun.COUNT_FIELDS:
            setattr(run, name, self.counts[name])
        run.save()


def _identity_record(purchase: PosPurchase) -> IdentityRecord | None:
    customer = purchase.customer
    if customer is None:
        return None
    data = {
        k: v
        for k, v in (
            ("last_name", customer.last_name),
            ("first_name", customer.first_name),
            ("birth_date", customer.birth_date),
        )
        if v not in (None, "")
    }
    return IdentityRecord(
        source=Source.POS,
        card=customer.card,
        phone=customer.phone,
        email=customer.email,
        data=data,
        at=purchase.purchased_at,
    )


def _stored_purchases(store_id: int, external_ids: list[str]) -> list[tuple[str, int, str]]:
    """(external id, pk, import digest) of this store's POS purchases among `external_ids`."""
    if connection.vendor != "postgresql":
        return list(
            Purchase.objects.filter(
                source=Source.POS, store_id=store_id, external_id__in=external_ids
            ).values_list("external_id", "pk", "import_digest")
        )
    # The store id goes in as a sub-select: for a store the statistics have not seen yet (a new
    # store's first file), a literal id is estimated at one row and the planner scans every
    # purchase of the store through the store index, once per batch. As a parameter it is
    # estimated from the column's average and the unique (source, store, id) index is used.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT external_id, id, import_digest FROM customers_purchase "
            "WHERE source = %s AND store_id = (SELECT %s::bigint) AND external_id = ANY(%s)",
            [Source.POS.value, store_id, external_ids],
        )
        return cursor.fetchall()


def _insert_purchases(
    store_id: int, rows: list[tuple], lines: list[list[tuple]], now: dt.datetime
) -> None:
    """Insert new purchases and their lines: COPY on PostgreSQL, bulk inserts elsewhere."""
    if connection.vendor == "postgresql":
        _copy_purchases(store_id, rows, lines, now)
        return
    objects = [
        Purchase(
            source=Source.POS,
            store_id=store_id,
            external_id=row[0],
            created_at=now,
            updated_at=now,
            **dict(zip(ROW_FIELDS, row[1:], strict=True)),
        )
        for row in rows
    ]
    Purchase.objects.bulk_create(objects, batch_size=500)
    _create_lines(
        (obj.pk, purchase_lines) for obj, purchase_lines in zip(objects, lines, strict=True)
    )


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """A text value as COPY's text format reads it (backslash, tab and newlines escaped)."""
    return value.translate(_COPY_ESCAPES)


def _copy_purchases(
    store_id: int, rows: list[tuple], lines: list[list[tuple]], now: dt.datetime
) -> None:
    # Ids are reserved from the sequence in one round trip, so the lines can name their
    # purchase without reading anything back (PERFORMANCE.md: COPY is the fast bulk path).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('customers_purchase', 'id')) "
            "FROM generate_series(1, %s)",
            [len(rows)],
        )
        ids = [r[0] for r in cursor.fetchall()]
        stamp = now.isoformat()
        NULL = r"\N"  # COPY's spelling of NULL
        prefix = f"\t{Source.POS.value}\t{store_id}\t"
        purchases = io.StringIO()
        purchase_lines = io.StringIO()
        for pk, row, row_lines in zip(ids, rows, lines, strict=True):
            (external_id, customer, at, day, kind, status, total, discount, spent, ref, digest) = (
                row
            )
            purchases.write(
                f"{pk}{prefix}{_copy_text(external_id)}\t"
                f"{customer if customer is not None else NULL}\t{at.isoformat()}\t{day}\t{kind}\t"
                f"{status}\t{total}\t{discount}\t{spent}\t{_copy_text(ref)}\t{digest}\t"
                f"{stamp}\t{stamp}\n"
            )
            for product_id, qty, price, amount in row_lines:
                purchase_lines.write(f"{pk}\t{product_id}\t{qty}\t{price}\t{amount}\n")
        purchases.seek(0)
        purchase_lines.seek(0)
        columns = ", ".join(("id", "source", "store_id", "external_id", *ROW_FIELDS))
        cursor.copy_expert(
            f"COPY customers_purchase ({columns}, created_at, updated_at) FROM STDIN", purchases
        )
        cursor.copy_expert(
            "COPY customers_purchaseline (purchase_id, product_id, qty, price, amount) FROM STDIN",
            purchase_lines,
        )


def _update_purchases(changed: list[tuple[int, tuple, list[tuple]]], now: dt.datetime) -> None:
    """A re-exported purchase (correction, return): its row updated, its lines replaced."""
    objects = [
        Purchase(pk=pk, updated_at=now, **dict(zip(ROW_FIELDS, row[1:], strict=True)))
        for pk, row, _lines in changed
    ]
    Purchase.objects.bulk_update(
        objects, [f.removesuffix("_id") for f in ROW_FIELDS] + ["updated_at"], batch_size=500
    )
    PurchaseLine.objects.filter(purchase_id__in=[pk for pk, _row, _lines in changed]).delete()
    _create_lines((pk, row_lines) for pk, _row, row_lines in changed)


def _create_lines(purchases: Iterable[tuple[int, list[tuple]]]) -> None:
    PurchaseLine.objects.bulk_create(
        [
            PurchaseLine(purchase_id=pk, product_id=product, qty=qty, price=price, amount=amount)
            for pk, lines in purchases
            for product, qty, price, amount in lines
        ],
        batch_size=500,
    )
