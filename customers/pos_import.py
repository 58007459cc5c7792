"""POS XML import: the database side of `customers.pos_xml` (../shared/formats/pos-xml.md).

A file is first scanned whole (well-formed, this format, checksum): a broken file is refused
before anything is stored. It is then read as a stream in batches; each batch is one transaction
under the identity lock: unchanged purchases (same digest) are skipped untouched, customers are
resolved set-based, new purchases inserted and changed ones updated with their lines replaced.
One bad purchase is reported and skipped, never stopping the good ones; a purchase delivered
twice changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import logging
import marshal
import os
import queue
import signal
import struct
import threading
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from pharmacrm.references import lock_referenced, row_checks_off

from .identity import IdentityRecord, Outcome, personal_data_errors
from .identity_batch import BatchResolver, identity_lock
from .models import (
    Customer,
    ImportIssue,
    ImportRun,
    Product,
    Purchase,
    PurchaseLine,
    PurchaseType,
    Source,
    Store,
)
from .models.purchases import ORDER_SOURCES
from .pos_xml import (
    PosFileError,
    PosPurchase,
    PosRejection,
    iter_pos_purchases,
    scan_pos_file,
)
from .purchase_hooks import PurchaseRecord, natural_key, run_purchase_hooks
from .services import products_ensure_from_lines
from .signals import purchases_changed

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


@dataclass(frozen=True, slots=True)
class OrderMatch:
    """An app, website or contact-centre order a till sale completes (or completed before)."""

    pk: int
    customer_id: int | None
    bonus_spent: Decimal  # what the order holds (redeemed when it was placed)
    digest: str  # import digest of the till sale last applied to it ("" before any)
    again: bool  # this very sale completed it before: a re-export of it


def match_order_refs(
    *, store_id: int, sales: Iterable[tuple[str, str]]
) -> tuple[dict[str, OrderMatch], dict[str, str]]:
    """The orders that till sales of store `store_id`, given as (purchase id, order_ref), complete:
    ({purchase id: match}, {purchase id: why its reference completes nothing}).

    The reference is the order's number in its channel (app, website, contact centre). A sale
    matches the order it completed before (same store and till purchase id: a re-export, which
    updates the order); otherwise the one order with that number that is placed, or completed
    through the API with no till sale yet (the till's record then replaces the lines). An order
    that is cancelled, returned, completed by another till sale, or whose number two channels
    share, is not matched: the sale is imported as an ordinary purchase with a warning, as an
    unknown reference is. The matched orders stay locked until the batch commits.
    """
    sales = list(sales)
    refs = {ref for _pid, ref in sales}
    matches: dict[str, OrderMatch] = {}
    problems: dict[str, str] = {}
    if not refs:
        return matches, problems
    by_ref: dict[str, list[tuple]] = {}
    rows = (
        Purchase.objects.select_for_update(of=("self",))
        .filter(source__in=ORDER_SOURCES, external_id__in=refs)
        .order_by("pk")  # one lock order for concurrent imports
        .values_list(
            "pk",
            "external_id",
            "customer_id",
            "status",
            "store_id",
            "till_purchase_id",
            "bonus_spent",
            "import_digest",
        )
    )
    for row in rows:
        by_ref.setdefault(row[1], []).append(row)
    taken: dict[int, str] = {}  # order pk -> the sale of this batch that completes it
    for pid, ref in sales:
        orders = by_ref.get(ref, [])
        mine = [o for o in orders if o[4] == store_id and o[5] == pid]
        if mine:
            pk, _ref, customer_id, _status, _store, _till, spent, digest = mine[0]
            matches[pid] = OrderMatch(pk, customer_id, spent, digest, again=True)
            taken[pk] = pid
            continue
        open_ = [
            o
            for o in orders
            if not o[5]
            and o[0] not in taken
            and o[3] in (Purchase.Status.PLACED, Purchase.Status.COMPLETED)
        ]
        if len(open_) == 1:
            pk, _ref, customer_id, _status, _store, _till, spent, digest = open_[0]
            matches[pid] = OrderMatch(pk, customer_id, spent, digest, again=False)
            taken[pk] = pid
        elif len(open_) > 1:
            problems[pid] = _(
                "Order “%(ref)s” is ambiguous: several channels have an order with this number. "
                "Imported as an ordinary purchase."
            ) % {"ref": ref}
        elif orders:
            order = orders[0]
            till = next((taken.get(o[0]) or o[5] for o in orders if taken.get(o[0]) or o[5]), "")
            if till:
                problems[pid] = _(
                    "Order “%(ref)s” was completed by till sale %(sale)s: imported as an "
                    "ordinary purchase."
                ) % {"ref": ref, "sale": till}
            else:
                problems[pid] = _(
                    "Order “%(ref)s” is %(status)s: imported as an ordinary purchase."
                ) % {"ref": ref, "status": Purchase.Status(order[3]).label.lower()}
    return matches, problems


def purchase_digest(purchase: PosPurchase) -> str:
    """A fingerprint of everything the file says about a purchase.

    The MD5 of the repr() of [id, datetime (ISO), type, status, order ref, discount, bonus spent,
    total, (card, phone, email, last name, first name, birth date if a customer), (sku, name, qty,
    price) per line]. The text is built directly rather than through repr() of that list (the
    same characters, a test holds them equal): digests stored by earlier imports stay valid.
    """
    customer = purchase.customer
    text = (
        f"[{purchase.purchase_id!r}, {purchase.purchased_at.isoformat()!r}, "
        f"{purchase.type_code!r}, {purchase.status!r}, {purchase.order_ref!r}, "
        f"Decimal('{purchase.discount}'), Decimal('{purchase.bonus_spent}'), "
        f"Decimal('{purchase.total}')"
    )
    if customer is not None:
        text += (
            f", {customer.card!r}, {customer.phone!r}, {customer.email!r}, "
            f"{customer.last_name!r}, {customer.first_name!r}, {customer.birth_date!r}"
        )
    text += "".join(
        [
            f", ({line.sku!r}, {line.name!r}, Decimal('{line.qty}'), Decimal('{line.price}'))"
            for line in purchase.lines
        ]
    )
    return hashlib.md5(f"{text}]".encode(), usedforsecurity=False).hexdigest()


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
    # Parsing starts at once (in a child process where there is one) and runs ahead while the
    # file is scanned; nothing it produces is written before the scan has passed.
    batches = _parsed_batches(path, batch_size)
    with _fewer_collections():
        try:
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
            for batch in batches:
                importer.import_batch(batch)
        finally:
            batches.close()
    importer.save_issues()  # the store warning of a file with no purchase at all
    run.status = ImportRun.Status.DONE
    run.finished_at = timezone.now()
    run.save()
    return run


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """The garbage collector run less often, on less, for the import.

    Each batch makes tens of thousands of short-lived tuples and dicts; with the default
    thresholds they set off 3,000 young, 270 middle and 24 full collections per 200,000
    purchases, each full one walking every object of the process (Django's included). The
    objects that exist before the import are frozen out of collections, and the youngest
    generation may grow to 50,000 objects (160, 15 and 1 collections); both are put back
    afterwards.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 50_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


# -- parsing, ahead of the writes --------------------------------------------------------------
#
# The parser's side of an import needs no database: it turns each <purchase> into a compact,
# marshal-able tuple holding what the writes need, with the digest and the COPY text already
# made. In a forked child process it runs on the other core, and only these tuples cross over.

# A rejection: (purchase id or None, position, field, reason).
_REJECTION_SIZE = 4
# A purchase: (purchase id, position, type code, order ref, digest, datetime (ISO), customer,
# problem, row, lines) where customer is None or (card, phone, email, last name, first name,
# birth date ISO or None); problem None or (field, reason) for what the parser does not check;
# row the COPY text of the columns in _ROW_COLUMNS; lines ((sku, name, "qty\tprice\tamount"), ...).
_ROW_COLUMNS = (
    "external_id",
    "purchased_at",
    "purchase_date",
    "status",
    "total",
    "discount",
    "bonus_spent",
    "order_ref",
    "import_digest",
)
# Child processes parsing the file (where os.fork exists; 0: a thread of this process). Tests
# run both ways.
PARSE_PROCESSES = 2
# How many frames of CHUNK purchases a child may hold ready (a few hundred KB each) while the
# parent scans or writes: it parses ahead by up to CHILD_AHEAD * CHUNK purchases.
CHILD_AHEAD = 64


def _compact(item: PosPurchase | PosRejection, local_zone: dt.tzinfo) -> tuple:
    if isinstance(item, PosRejection):
        return (item.purchase_id, item.position, item.field, item.reason)
    digest = purchase_digest(item)
    at = item.purchased_at
    at_text = at.isoformat()
    customer = item.customer
    problem = None
    if customer is not None:
        if customer.last_name or customer.first_name:  # blank names have nothing to check
            data = {"last_name": customer.last_name, "first_name": customer.first_name}
            for name, message in personal_data_errors(data).items():
                problem = (f"customer.{name}", message)
                break
        customer = (
            customer.card,
            customer.phone,
            customer.email,
            customer.last_name,
            customer.first_name,
            customer.birth_date.isoformat() if customer.birth_date is not None else None,
        )
    lines = []
    for index, line in enumerate(item.lines, start=1):
        sku, name = line.sku, line.name
        if problem is None and (len(sku) > 64 or len(name) > 255):
            problem = (
                f"line[{index}].sku" if len(sku) > 64 else f"line[{index}].name",
                _("Too long."),
            )
        lines.append((sku, name, f"{line.qty}\t{line.price}\t{line.amount}"))
    row = (
        f"{_copy_text(item.purchase_id)}\t{at_text}\t{at.astimezone(local_zone).date()}\t"
        f"{item.status}\t{item.total}\t{item.discount}\t{item.bonus_spent}\t"
        f"{_copy_text(item.order_ref)}\t{digest}"
    )
    return (
        item.purchase_id,
        item.position,
        item.type_code,
        item.order_ref,
        digest,
        at_text,
        customer,
        problem,
        row,
        tuple(lines),
    )


def _compact_items(path: Path, share: tuple[int, int]) -> Iterator[tuple]:
    """The compact tuples of one share of the file's purchases (iter_pos_purchases' `share`)."""
    local_zone = timezone.get_default_timezone()  # purchase dates are in the chain's zone
    for item in iter_pos_purchases(path, share=share):
        yield _compact(item, local_zone)


def _batches(items: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    """Batches of at most `size`, split so no purchase id repeats inside one batch: a later
    copy of a purchase in the same file then updates the earlier one, as across files."""
    batch: list[tuple] = []
    seen: set[str] = set()
    for item in items:
        key = item[0]
        if len(batch) >= size or (key is not None and key in seen):
            yield batch
            batch, seen = [], set()
        batch.append(item)
        if key is not None:
            seen.add(key)
    if batch:
        yield batch


def _parsed_batches(path: Path, size: int) -> _ChildBatches | _ThreadBatches:
    if PARSE_PROCESSES and hasattr(os, "fork"):
        return _ChildBatches(path, size, PARSE_PROCESSES)
    return _ThreadBatches(path, size)


_FRAME = struct.Struct("<cI")  # kind, payload length
_ITEMS, _FILE_ERROR, _CRASH, _DONE = b"I", b"E", b"X", b"D"
CHUNK = 1000  # compact tuples per frame


class _ChildBatches:
    """The file parsed by `n` forked child processes, child k taking the purchases at positions
    k + 1, k + 1 + n, ...; their items merged back in document order and batched here. Errors
    in a child are raised here.

    A child only reads the file and writes to its pipe: it never touches the database (it shares
    the parent's connection socket) and leaves with os._exit, running no cleanup. `close()`
    stops and reaps the children whether or not their output was read.
    """

    def __init__(self, path: Path, size: int, n: int) -> None:
        self._size = size
        self._children: list[tuple[int, Any]] = []
        language = translation.get_language()
        _("Too long.")  # the catalogue is loaded before the fork, not in each child
        try:
            for part in range(n):
                read_fd, write_fd = os.pipe()
                pid = os.fork()
                if pid == 0:  # pragma: no cover - a child; its work is covered by _ThreadBatches
                    status = 1
                    try:
                        gc.freeze()  # the parent's objects are never collected (or finalised)
                        gc.set_threshold(50_000, *gc.get_threshold()[1:])  # _fewer_collections
                        os.close(read_fd)
                        for _pid, pipe in self._children:
                            pipe.close()
                        _child(write_fd, path, (part, n), language)
                        status = 0
                    finally:
                        os._exit(status)
                os.close(write_fd)
                self._children.append((pid, open(read_fd, "rb")))  # noqa: SIM115 - close()
        except BaseException:
            self.close()
            raise
        self._finished = False

    def __iter__(self) -> Iterator[list[tuple]]:
        streams = [self._items(pipe) for _pid, pipe in self._children]

        def merged() -> Iterator[tuple]:
            while True:
                for stream in streams:
                    item = next(stream, None)
                    if item is None:
                        return
                    yield item

        yield from _batches(merged(), self._size)
        for stream in streams:  # each child's end, and its errors
            for _item in stream:
                raise RuntimeError("POS parser processes disagree on the purchase count.")
        self._finished = True

    @staticmethod
    def _items(pipe) -> Iterator[tuple]:
        while True:
            header = pipe.read(_FRAME.size)
            if len(header) < _FRAME.size:
                raise RuntimeError("A POS parser process ended without finishing.")
            kind, length = _FRAME.unpack(header)
            data = pipe.read(length)
            if kind == _ITEMS:
                # The child's own output, from the file through the parser: not untrusted bytes.
                yield from marshal.loads(data)  # noqa: S302
            elif kind == _DONE:
                return
            elif kind == _FILE_ERROR:
                raise PosFileError(data.decode())
            else:
                raise RuntimeError(f"A POS parser process failed:\n{data.decode()}")

    def close(self) -> None:
        children, self._children = self._children, []
        for pid, pipe in children:
            if not getattr(self, "_finished", False):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            pipe.close()
            os.waitpid(pid, 0)


def _child(fd: int, path: Path, share: tuple[int, int], language: str | None) -> None:
    frames: queue.Queue = queue.Queue(maxsize=CHILD_AHEAD)

    def write() -> None:
        # Ends when the parent has gone (its end of the pipe closed): put() then stops the child.
        with contextlib.suppress(BrokenPipeError), open(fd, "wb", buffering=0) as pipe:
            while (frame := frames.get()) is not None:
                pipe.write(frame)

    def put(frame: bytes | None) -> None:
        while True:
            try:
                frames.put(frame, timeout=1)
                return
            except queue.Full:
                if not writer.is_alive():
                    raise SystemExit(1) from None

    def send(kind: bytes, data: bytes) -> None:
        put(_FRAME.pack(kind, len(data)) + data)

    writer = threading.Thread(target=write, name="pos-pipe", daemon=True)
    writer.start()
    try:
        with translation.override(language):
            chunk: list[tuple] = []
            for item in _compact_items(path, share):
                chunk.append(item)
                if len(chunk) >= CHUNK:
                    send(_ITEMS, marshal.dumps(chunk))
                    chunk = []
            if chunk:
                send(_ITEMS, marshal.dumps(chunk))
    except PosFileError as exc:
        send(_FILE_ERROR, str(exc).encode())
    except BaseException:
        send(_CRASH, traceback.format_exc().encode())
    else:
        send(_DONE, b"")
    put(None)
    writer.join()


class _ThreadBatches:
    """The same batches from a thread of this process (where there is no fork)."""

    def __init__(self, path: Path, size: int) -> None:
        self._batches = _prefetched(_batches(_compact_items(path, (0, 1)), size))

    def __iter__(self) -> Iterator[list[tuple]]:
        return self._batches

    def close(self) -> None:
        self._batches.close()


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


class _Refused(Exception):
    """Purchases a purchase hook refused: {purchase id in the file: (field, reason)}."""

    def __init__(self, reasons: dict[str, tuple[str, str]]) -> None:
        super().__init__(reasons)
        self.reasons = reasons


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

    def reject(self, purchase_id: str | None, position: int, field: str, reason: str) -> None:
        self.issues.append(
            ImportIssue(
                run=self.run,
                level=ImportIssue.Level.ERROR,
                record_id=purchase_id or "",
                position=position,
                field=field,
                message=reason,
            )
        )
        self.counts["rejected"] += 1

    def save_issues(self) -> None:
        ImportIssue.objects.bulk_create(self.issues, batch_size=1000)
        self.issues = []

    # -- one batch -------------------------------------------------------------------------------

    def import_batch(self, batch: list[tuple]) -> None:
        """One batch of _compact tuples: rejections reported, purchases written."""
        good: list[tuple] = []
        types = self.types
        for item in batch:
            if len(item) == _REJECTION_SIZE:
                self.reject(*item)
            elif item[2] not in types:
                # What the parser cannot know: the reference list of purchase types.
                self.reject(
                    item[0],
                    item[1],
                    "type",
                    _("Unknown purchase type “%(code)s”.") % {"code": item[2]},
                )
            elif item[7] is not None:
                self.reject(item[0], item[1], *item[7])
            else:
                good.append(item)
        self.counts["records"] += len(batch)
        with transaction.atomic():
            identity_lock()
            while True:
                saved = Counter(self.counts), len(self.issues), dict(self.products)
                try:
                    with transaction.atomic():
                        self._write(good)
                    break
                except _Refused as refused:
                    # Rare (bonuses spent over the balance): the batch is written again
                    # without the refused purchases, whose customers are not created either.
                    self.counts, self.products = saved[0], saved[2]
                    del self.issues[saved[1] :]
                    for p in good:
                        if p[0] in refused.reasons:
                            self.reject(p[0], p[1], *refused.reasons[p[0]])
                    good = [p for p in good if p[0] not in refused.reasons]
            self.save_issues()
            self._save_counts()

    def _write(self, purchases: list[tuple]) -> None:
        if not purchases:
            return
        existing = {
            external_id: (pk, digest)
            for external_id, pk, digest in _stored_purchases(
                self.store.pk, [p[0] for p in purchases]
            )
        }
        # Sales naming an app or site order complete it rather than adding a purchase; a sale
        # that completed one before finds it again (its re-export updates the order).
        sales = [(p[0], p[3]) for p in purchases if p[3] and p[0] not in existing]
        orders, order_problems = (
            match_order_refs(store_id=self.store.pk, sales=sales) if sales else ({}, {})
        )
        for pid, match in orders.items():
            if match.again:
                existing[pid] = (match.pk, match.digest)
        todo = [p for p in purchases if existing.get(p[0], (None, None))[1] != p[4]]
        self.counts["unchanged"] += len(purchases) - len(todo)
        if not todo:
            return

        resolver = BatchResolver()
        moments: dict[str, dt.datetime] = {}
        # An order keeps the customer who placed it: the till's card or phone on its sale is
        # not resolved (and creates no customer).
        customer_ids = resolver.resolve(
            [None if p[0] in orders else _identity_record(p, moments) for p in todo]
        )
        self.counts["customers_created"] += resolver.counts[Outcome.CREATED]
        self.counts["customers_matched"] += resolver.counts[Outcome.MATCHED]
        self.counts["customers_merged"] += resolver.counts["merged_customers"]
        self.counts["suspicions"] += resolver.counts["suspicions"]

        products = self.products
        missing = {sku: name for p in todo for sku, name, _line in p[9] if sku not in products}
        if missing:
            products.update(products_ensure_from_lines(missing))

        for p in todo:
            if p[3] and p[0] not in orders:
                self.warn(
                    p[0],
                    p[1],
                    "order_ref",
                    order_problems.get(p[0])
                    or _("Order “%(ref)s” is not known: imported as an ordinary purchase.")
                    % {"ref": p[3]},
                )

        now = timezone.now()
        new: list[tuple[tuple, int | None]] = []
        changed: list[tuple[int, tuple, int | None]] = []
        completing: list[tuple[OrderMatch, tuple]] = []
        for p, customer_id in zip(todo, customer_ids, strict=True):
            stored = existing.get(p[0])
            if p[0] in orders:
                completing.append((orders[p[0]], p))
            elif stored is None:
                new.append((p, customer_id))
            else:
                changed.append((stored[0], p, customer_id))
        ids: list[int] = []
        if new:
            if connection.vendor == "postgresql":
                ids = self._copy_purchases(new, now)
            else:
                ids = self._create_purchases(new, now)
        if changed:
            self._update_purchases(changed, now)
        if completing:
            self._complete_orders(completing, now)
        records = [
            self._record(pk, p, customer_id, is_new=True)
            for pk, (p, customer_id) in zip(ids, new, strict=True)
        ]
        records += [self._record(pk, p, customer_id) for pk, p, customer_id in changed]
        records += [
            self._record(m.pk, p, m.customer_id, spent=_order_spend(m, p)) for m, p in completing
        ]
        refused = run_purchase_hooks(records, channel=Source.POS)
        if refused:
            by_pk = {pk: p[0] for pk, (p, _c) in zip(ids, new, strict=True)}
            by_pk.update((pk, p[0]) for pk, p, _c in changed)
            by_pk.update((m.pk, p[0]) for m, p in completing)
            raise _Refused({by_pk[pk]: reason for pk, reason in refused.items()})
        self.counts["created"] += len(new)
        self.counts["updated"] += len(changed) + len(completing)
        # Figures and statuses follow from purchases: the loyalty app recomputes these
        # customers once the batch commits.
        customers = {c for c in customer_ids if c is not None}
        customers.update(m.customer_id for m, _p in completing if m.customer_id is not None)
        purchases_changed.send(sender=_FileImporter, customer_ids=customers)

    def _save_counts(self) -> None:
        run = self.run
        for name in ImportRun.COUNT_FIELDS:
            setattr(run, name, self.counts[name])
        run.save()

    # -- writing -----------------------------------------------------------------------------------

    def _values(self, purchase: tuple, customer_id: int | None) -> dict[str, Any]:
        """The purchase's columns as model field values (for the ORM's paths)."""
        _id, at, day, status, total, discount, spent, _ref, digest = purchase[8].split("\t")
        return {
            "customer_id": customer_id,
            "purchased_at": dt.datetime.fromisoformat(at),
            "purchase_date": dt.date.fromisoformat(day),
            "purchase_type_id": self.types[purchase[2]],
            "status": status,
            "total": Decimal(total),
            "discount": Decimal(discount),
            "bonus_spent": Decimal(spent),
            "order_ref": purchase[3],
            "import_digest": digest,
        }

    def _record(
        self,
        pk: int,
        purchase: tuple,
        customer_id: int | None,
        *,
        is_new: bool = False,
        spent: Decimal | None = None,
    ) -> PurchaseRecord:
        """The purchase as the purchase hooks (bonuses) see it (`spent`: an order's, when not
        the till's figure)."""
        _id, at, day, status, _total, discount, till_spent, _ref, _digest = purchase[8].split("\t")
        products = self.products
        return PurchaseRecord(
            ref=pk,
            natural_key=natural_key(Source.POS, self.store.pk, purchase[0]),
            customer_id=customer_id,
            status=status,
            purchased_at=dt.datetime.fromisoformat(at),
            purchase_date=dt.date.fromisoformat(day),
            purchase_type_id=self.types[purchase[2]],
            lines=[
                (products[sku], Decimal(text.rpartition("\t")[2]))
                for sku, _name, text in purchase[9]
            ],
            discount=Decimal(discount),
            spent=Decimal(till_spent) if spent is None else spent,
            purchase_id=pk,
            is_new=is_new,
        )

    def _lines(self, purchase: tuple) -> list[tuple]:
        """(product id, qty, price, amount) per line of the purchase."""
        return [
            (self.products[sku], *map(Decimal, text.split("\t")))
            for sku, _name, text in purchase[9]
        ]

    def _copy_purchases(self, new: list[tuple[tuple, int | None]], now: dt.datetime) -> list[int]:
        # Ids are reserved from the sequence in one round trip, so the lines can name their
        # purchase without reading anything back (PERFORMANCE.md: COPY is the fast bulk path).
        with connection.cursor() as cursor:
            # The sequence looked up once, not per row (ten times faster for a batch).
            cursor.execute(
                "SELECT nextval(s.seq) FROM (SELECT pg_get_serial_sequence("
                "'customers_purchase', 'id')::regclass AS seq OFFSET 0) s, "
                "generate_series(1, %s)",
                [len(new)],
            )
            ids = [r[0] for r in cursor.fetchall()]
            stamp = now.isoformat()
            prefix = f"\t{Source.POS.value}\t{self.store.pk}\t{stamp}\t{stamp}\t"
            types = self.types
            products = self.products
            rows: list[str] = []
            lines: list[str] = []
            used_types: set[int] = set()
            used_products: set[int] = set()
            for pk, (p, customer_id) in zip(ids, new, strict=True):
                customer = r"\N" if customer_id is None else customer_id  # COPY's NULL
                type_id = types[p[2]]
                used_types.add(type_id)
                rows.append(f"{pk}\t{customer}\t{type_id}{prefix}{p[8]}\n")
                for sku, _name, text in p[9]:
                    product = products[sku]
                    used_products.add(product)
                    lines.append(f"{pk}\t{product}\t{text}\n")
            # What the rows refer to, locked once for the batch (pharmacrm.references); each
            # line's purchase is one of these rows, created in this transaction.
            lock_referenced(Store._meta.db_table, [self.store.pk])
            lock_referenced(PurchaseType._meta.db_table, used_types)
            lock_referenced(Product._meta.db_table, used_products)
            lock_referenced(Customer._meta.db_table, (c for _p, c in new))
            with row_checks_off():
                _copy(
                    cursor,
                    "customers_purchase (id, customer_id, purchase_type_id, source, store_id, "
                    f"created_at, updated_at, {', '.join(_ROW_COLUMNS)})",
                    "".join(rows),
                )
                _copy(
                    cursor,
                    "customers_purchaseline (purchase_id, product_id, qty, price, amount)",
                    "".join(lines),
                )
        return ids

    def _create_purchases(self, new: list[tuple[tuple, int | None]], now: dt.datetime) -> list[int]:
        objects = [
            Purchase(
                source=Source.POS,
                store_id=self.store.pk,
                external_id=p[0],
                created_at=now,
                updated_at=now,
                **self._values(p, customer_id),
            )
            for p, customer_id in new
        ]
        Purchase.objects.bulk_create(objects, batch_size=500)
        _create_lines(
            (obj.pk, self._lines(p)) for obj, (p, _customer) in zip(objects, new, strict=True)
        )
        return [obj.pk for obj in objects]

    def _complete_orders(self, completing: list[tuple[OrderMatch, tuple]], now: dt.datetime):
        """Orders completed by till sales (or updated by their re-exports): the till's record
        replaces the order's lines and amounts, the store is the till's; the order keeps its
        number, channel, customer and the bonuses it holds."""
        objects = []
        for match, p in completing:
            values = self._values(p, match.customer_id)
            values["bonus_spent"] = _order_spend(match, p)
            del values["order_ref"]  # the order's number already
            objects.append(
                Purchase(
                    pk=match.pk,
                    store_id=self.store.pk,
                    till_purchase_id=p[0],
                    updated_at=now,
                    **values,
                )
            )
        fields = [f.removesuffix("_id") for f in ROW_FIELDS if f != "order_ref"]
        Purchase.objects.bulk_update(
            objects, [*fields, "store", "till_purchase_id", "updated_at"], batch_size=500
        )
        PurchaseLine.objects.filter(purchase_id__in=[m.pk for m, _p in completing]).delete()
        _create_lines((m.pk, self._lines(p)) for m, p in completing)

    def _update_purchases(self, changed: list[tuple[int, tuple, int | None]], now: dt.datetime):
        """A re-exported purchase (correction, return): its row updated, its lines replaced."""
        objects = [
            Purchase(pk=pk, updated_at=now, **self._values(p, customer_id))
            for pk, p, customer_id in changed
        ]
        Purchase.objects.bulk_update(
            objects, [f.removesuffix("_id") for f in ROW_FIELDS] + ["updated_at"], batch_size=500
        )
        PurchaseLine.objects.filter(purchase_id__in=[pk for pk, _p, _c in changed]).delete()
        _create_lines((pk, self._lines(p)) for pk, p, _customer in changed)


def _order_spend(match: OrderMatch, purchase: tuple) -> Decimal:
    """The bonuses a till sale completing an order has spent: what the order holds, or the
    till's figure when it is more (redeemed at the till on top; checked against the balance).
    A till that does not repeat the order's online spend does not refund it."""
    return max(match.bonus_spent, Decimal(purchase[8].split("\t")[6]))


def _identity_record(purchase: tuple, moments: dict[str, dt.datetime]) -> IdentityRecord | None:
    customer = purchase[6]
    if customer is None:
        return None
    card, phone, email, last_name, first_name, birth_date = customer
    data: dict[str, Any] = {}
    if last_name:
        data["last_name"] = last_name
    if first_name:
        data["first_name"] = first_name
    if birth_date is not None:
        data["birth_date"] = dt.date.fromisoformat(birth_date)
    at = moments.get(purchase[5])
    if at is None:
        at = moments[purchase[5]] = dt.datetime.fromisoformat(purchase[5])
    return IdentityRecord(source=Source.POS, card=card, phone=phone, email=email, data=data, at=at)


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


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    """A text value as COPY's text format reads it (backslash, tab and newlines escaped)."""
    return value.translate(_COPY_ESCAPES)


def _copy(cursor, target: str, text: str) -> None:
    data = text.encode()
    # One read of the whole buffer (psycopg2 reads 8 KB at a time by default).
    cursor.copy_expert(f"COPY {target} FROM STDIN", _Bytes(data), max(len(data), 8192))


class _Bytes:
    """A file over bytes for copy_expert, without io.BytesIO's copy."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        start = self._at
        end = len(self._data) if size < 0 else min(start + size, len(self._data))
        self._at = end
        return self._data[start:end]  # the whole buffer at once: the same object, no copy

    def readline(self, size: int = -1) -> bytes:  # pragma: no cover - copy_expert reads blocks
        raise NotImplementedError


def _create_lines(purchases: Iterable[tuple[int, list[tuple]]]) -> None:
    PurchaseLine.objects.bulk_create(
        [
            PurchaseLine(purchase_id=pk, product_id=product, qty=qty, price=price, amount=amount)
            for pk, lines in purchases
            for product, qty, price, amount in lines
        ],
        batch_size=500,
    )
