"""POS XML import: the database side of `customers.pos_xml` (../shared/formats/pos-xml.md).

A file is first scanned whole (well-formed, this format, checksum): a broken file is refused
before anything is stored. It is then read as a stream in batches; each batch is one transaction
under the identity lock: unchanged purchases (same digest) are skipped untouched, customers are
resolved set-based, new purchases inserted and changed ones updated with their lines replaced.
One bad purchase is reported and skipped, never stopping the good ones; a purchase delivered
twice changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone
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
# Fields a repeated purchase may change; the unique key (source, store, id) never does.
UPDATABLE = (
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
    for batch in _batches(iter_pos_purchases(path), batch_size):
        importer.import_batch(batch)
    importer.save_issues()  # the store warning of a file with no purchase at all
    run.status = ImportRun.Status.DONE
    run.finished_at = timezone.now()
    run.save()
    return run


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
            for external_id, pk, digest in Purchase.objects.filter(
                source=Source.POS,
                store=self.store,
                external_id__in=[p.purchase_id for p in purchases],
            ).values_list("external_id", "pk", "import_digest")
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
        new_rows: list[Purchase] = []
        new_lines: list[list[PurchaseLine]] = []
        changed_rows: list[Purchase] = []
        changed_lines: list[PurchaseLine] = []
        for (p, digest), customer_id in zip(todo, customer_ids, strict=True):
            row = Purchase(
                source=Source.POS,
                store=self.store,
                external_id=p.purchase_id,
                customer_id=customer_id,
                purchased_at=p.purchased_at,
                purchase_date=timezone.localdate(p.purchased_at),
                purchase_type_id=self.types[p.type_code],
                status=p.status,
                total=p.total,
                discount=p.discount,
                bonus_spent=p.bonus_spent,
                order_ref=p.order_ref,
                import_digest=digest,
                created_at=now,
                updated_at=now,
            )
            lines = [
                PurchaseLine(
                    product_id=self.products[line.sku],
                    qty=line.qty,
                    price=line.price,
                    amount=line.amount,
                )
                for line in p.lines
            ]
            if p.purchase_id in existing:
                row.pk = existing[p.purchase_id][0]
                changed_rows.append(row)
                for line in lines:
                    line.purchase_id = row.pk
                changed_lines += lines
            else:
                new_rows.append(row)
                new_lines.append(lines)

        Purchase.objects.bulk_create(new_rows, batch_size=2000)
        all_lines: list[PurchaseLine] = []
        for row, lines in zip(new_rows, new_lines, strict=True):
            for line in lines:
                line.purchase_id = row.pk
            all_lines += lines
        if changed_rows:
            # A re-exported purchase (correction, return): its row updated, its lines replaced.
            Purchase.objects.bulk_update(
                changed_rows,
                [f.removesuffix("_id") for f in UPDATABLE] + ["updated_at"],
                batch_size=500,
            )
            PurchaseLine.objects.filter(purchase_id__in=[r.pk for r in changed_rows]).delete()
            all_lines += changed_lines
        PurchaseLine.objects.bulk_create(all_lines, batch_size=5000)
        self.counts["created"] += len(new_rows)
        self.counts["updated"] += len(changed_rows)

    def _save_counts(self) -> None:
        run = self.run
        for name in (
            "records",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "customers_created",
            "customers_matched",
            "customers_merged",
            "suspicions",
        ):
            setattr(run, name, self.counts[name])
        run.warnings = self.counts["warnings"]
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
