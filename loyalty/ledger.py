"""The bonus ledger's services: every change of a balance goes through here.

Each service locks the customer's account row (`open_books`), checks the idempotency key, lets a
`ledger_book.Book` work out the rows, and writes them with the account in the same transaction
(`write_books`). The checkout redemption on PostgreSQL is the hot path: one call of a database
function (migrations 0009, 0011) inserts the keyed movement, takes the amount from the balance only
if it covers it (the CHECK on the balance backs it), then consumes the unexpired lots
soonest-expiring first.

Everything that changes a customer's lots locks the account row first, in customer-id order for
many accounts, so a statement that reads lots after taking the lock sees every earlier change.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from pharmacrm.prepared import execute_prepared
from pharmacrm.references import lock_referenced, row_checks_off
from pharmacrm.validation import field_error

from .bonus_rules import BonusPolicy, parse_amount
from .ledger_book import Book, Debt, InsufficientBonus, Lot, NewMovement
from .models import BonusAccount, BonusConsumption, BonusMovement, MovementKind

__all__ = [
    "InsufficientBonus",
    "Posted",
    "bonus_adjust",
    "bonus_grant",
    "bonus_redeem",
    "open_books",
    "write_books",
]

ZERO = Decimal("0.00")
MOVEMENTS = BonusMovement._meta.db_table
CONSUMPTIONS = BonusConsumption._meta.db_table
ACCOUNTS = BonusAccount._meta.db_table
_PURCHASES = BonusMovement._meta.get_field("purchase").related_model._meta.db_table
_USERS = BonusMovement._meta.get_field("created_by").related_model._meta.db_table


@dataclass(frozen=True)
class Posted:
    """What a ledger service did: the movement (new or replayed) and the account after it."""

    movement_id: int
    kind: str
    amount: Decimal
    replayed: bool
    balance: Decimal
    pending: Decimal
    debt: Decimal


def _postgres() -> bool:
    return connection.vendor == "postgresql"


# -- loading and writing books ------------------------------------------------------------------


def open_books(customer_ids: Iterable[int], *, with_lots: Iterable[int] = ()) -> dict[int, Book]:
    """Locks (creating if missing) the accounts of `customer_ids`, in id order, and returns
    their books. Lots are read for `with_lots` now and lazily for the others. Call inside a
    transaction."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    now = timezone.now()
    with connection.cursor() as cursor:
        if _postgres():
            # One statement: the missing accounts created (an index probe per id is cheaper
            # than a speculative insert; ON CONFLICT covers a concurrent creation), then the
            # others locked in id order (UNION ALL reads its branches in order).
            # Prepared for the few accounts of an API call (its plan cost more than its run);
            # a batch's thousands are planned each time, for their own sizes.
            execute = execute_prepared if len(ids) < SMALL_WRITE else _execute
            execute(
                cursor,
                "WITH new AS ("
                f"INSERT INTO {ACCOUNTS} (customer_id, balance, pending, debt, updated_at) "
                "SELECT c, 0, 0, 0, %s::timestamptz FROM unnest(%s::bigint[]) AS c "
                f"WHERE NOT EXISTS (SELECT FROM {ACCOUNTS} a WHERE a.customer_id = c) "
                "ON CONFLICT DO NOTHING RETURNING customer_id, balance, pending, debt"
                "), locked AS ("
                f"SELECT customer_id, balance, pending, debt FROM {ACCOUNTS} "
                "WHERE customer_id = ANY(%s) ORDER BY customer_id FOR UPDATE"
                ") SELECT * FROM new UNION ALL SELECT * FROM locked",
                [now, ids, ids],
            )
            rows = cursor.fetchall()
            if len(rows) < len(ids):
                # Created by a concurrent transaction that committed after this statement's
                # snapshot (the insert waited for it, then skipped them): locked now.
                missing = sorted(set(ids) - {row[0] for row in rows})
                cursor.execute(
                    f"SELECT customer_id, balance, pending, debt FROM {ACCOUNTS} "
                    "WHERE customer_id = ANY(%s) ORDER BY customer_id FOR UPDATE",
                    [missing],
                )
                rows += cursor.fetchall()
        else:
            BonusAccount.objects.bulk_create(
                [BonusAccount(customer_id=c, updated_at=now) for c in ids],
                ignore_conflicts=True,
                batch_size=500,
            )
            rows = []
            for chunk in _chunks(ids, 5000):
                rows += BonusAccount.objects.filter(customer_id__in=chunk).values_list(
                    "customer_id", "balance", "pending", "debt"
                )
    books = {
        c: Book(customer_id=c, balance=b, pending=p, debt=d, loader=_load_one)
        for c, b, p, d in rows
    }
    load = [books[c] for c in set(with_lots) if c in books]
    if load:
        load_lots(load)
    return books


def _execute(cursor, sql: str, params) -> None:
    cursor.execute(sql, params)


def _load_one(book: Book) -> None:
    load_lots([book])


def load_lots(books: list[Book]) -> None:
    """Reads the open lots and debts of `books` (one query each for all of them)."""
    by_id = {b.customer_id: b for b in books}
    for book in books:
        book.lots, book.debts = [], []
    ids = list(by_id)
    for chunk in _chunks(ids, 20000):
        rows = (
            BonusMovement.objects.filter(customer_id__in=chunk, remaining__gt=0)
            .values_list(
                "customer_id",
                "id",
                "remaining",
                "expires_at",
                "is_pending",
                "purchase_id",
                "available_at",
            )
            .order_by()
        )
        for customer_id, pk, remaining, expires_at, pending, purchase_id, available_at in rows:
            by_id[customer_id].lots.append(
                Lot(pk, remaining, expires_at, pending, purchase_id, pk, available_at=available_at)
            )
    indebted = [b.customer_id for b in books if b.debt > 0]
    for chunk in _chunks(indebted, 20000):
        for customer_id, pk, uncovered in (
            BonusMovement.objects.filter(customer_id__in=chunk, uncovered__gt=0)
            .values_list("customer_id", "id", "uncovered")
            .order_by()
        ):
            by_id[customer_id].debts.append(Debt(pk, uncovered, order=pk))


def write_books(books: Iterable[Book]) -> None:
    """Writes what the books produced: new movements, consumptions, touched lots and debts, and
    the accounts' figures. The accounts must have been locked by `open_books`."""
    books = [b for b in books if b.new or b.consumptions or b.dirty]
    if not books:
        return
    now = timezone.now()
    movements = [m for b in books for m in b.new]
    lots = [lot for b in books for lot in b.lots or () if lot.changed and lot.id is not None]
    debts = [d for b in books for d in b.debts or () if d.changed and d.id is not None]
    if _postgres():
        _write_postgres(books, movements, lots, debts, now)
    else:
        _write_generic(books, movements, lots, debts, now)
    for book in books:  # written: a book can go on working
        book.new = []
        book.consumptions = []
        book.dirty = False
        for lot in book.lots or ():
            lot.changed = False
            if lot.movement is not None:
                lot.id, lot.movement = lot.movement.id, None
        for debt in book.debts or ():
            debt.changed = False
            if debt.movement is not None:
                debt.id, debt.movement = debt.movement.id, None


def _ref(ref) -> int:
    return ref.id if isinstance(ref, NewMovement) else ref


MOVEMENT_COLUMNS = (
    "id",
    "customer_id",
    "kind",
    "amount",
    "idempotency_key",
    "purchase_id",
    "campaign_ref",
    "created_at",
    "created_by_id",
    "channel",
    "reason",
    "available_at",
    "expires_at",
    "is_pending",
    "remaining",
    "uncovered",
    "accrual_percent",
    "status",
)


# Fewer rows than this are written with plain INSERT / UPDATE ... FROM (VALUES ...): one round
# trip each, where COPY takes two (ids, rows) and an update through a temporary table four. A
# single API order or grant writes a handful; the POS import's batches thousands.
SMALL_WRITE = 50


def _write_postgres(books, movements, lots, debts, now) -> None:
    from psycopg2.extras import execute_values

    if max(len(movements), len(lots), len(debts), len(books)) < SMALL_WRITE:
        consumptions = [c for b in books for c in b.consumptions]
        if len(consumptions) < SMALL_WRITE:
            _write_small(books, movements, consumptions, lots, debts, now)
            return
    # What the new rows refer to, locked once for the write (pharmacrm.references): the
    # purchases and users the movements name, and the stored movements the consumptions name
    # (lots and debts of these accounts). The accounts are locked FOR UPDATE (open_books); the
    # new movements are this transaction's own.
    lock_referenced(_PURCHASES, {m.purchase_id for m in movements})
    lock_referenced(_USERS, {m.created_by_id for m in movements})
    lock_referenced(
        MOVEMENTS,
        {
            ref
            for b in books
            for d, c, _amount in b.consumptions
            for ref in (d, c)
            if not isinstance(ref, NewMovement)
        },
    )
    with connection.cursor() as cursor, row_checks_off():
        if len(movements) >= SMALL_WRITE:
            _copy_movements(cursor, movements)
        elif movements:
            _insert_movements(cursor, movements)
        consumptions = [
            (_ref(d), _ref(c), amount) for b in books for d, c, amount in b.consumptions
        ]
        if len(consumptions) >= SMALL_WRITE:
            stamp = now.isoformat()
            cursor.copy_expert(
                f"COPY {CONSUMPTIONS} (debit_id, credit_id, amount, created_at) FROM STDIN",
                io.StringIO("".join(f"{d}\t{c}\t{a}\t{stamp}\n" for d, c, a in consumptions)),
            )
        elif consumptions:
            execute_values(
                cursor,
                f"INSERT INTO {CONSUMPTIONS} (debit_id, credit_id, amount, created_at) VALUES %s",
                [(d, c, a, now) for d, c, a in consumptions],
                page_size=len(consumptions),
            )
    with connection.cursor() as cursor:
        if lots:
            _update_from(
                cursor,
                f"UPDATE {MOVEMENTS} t SET remaining = v.remaining, is_pending = v.pending",
                "t.id = v.id",
                ("id bigint", "remaining numeric", "pending boolean"),
                [(lot.id, lot.remaining, "t" if lot.pending else "f") for lot in lots],
            )
        if debts:
            _update_from(
                cursor,
                f"UPDATE {MOVEMENTS} t SET uncovered = v.uncovered",
                "t.id = v.id",
                ("id bigint", "uncovered numeric"),
                [(d.id, d.uncovered) for d in debts],
            )
        _update_from(
            cursor,
            f"UPDATE {ACCOUNTS} t SET balance = v.balance, pending = v.pending, debt = v.debt, "
            "updated_at = v.at",
            "t.customer_id = v.id",
            ("id bigint", "balance numeric", "pending numeric", "debt numeric", "at timestamptz"),
            [(b.customer_id, b.balance, b.pending, b.debt, now.isoformat()) for b in books],
        )


def _write_small(books, movements, consumptions, lots, debts, now) -> None:
    """A few rows (an API order, a grant, an adjustment) in one statement: the movements
    inserted, the consumptions naming the new ones by key, the lots, debts and accounts
    updated (each a data-modifying CTE: one round trip where there were up to five)."""
    parts: list[str] = []
    params: list = []

    def values(rows: list[tuple], types: tuple[str, ...] | None = None) -> str:
        cast = types or ("",) * len(rows[0])
        row = "(" + ", ".join(f"%s{'::' + t if t else ''}" for t in cast) + ")"
        for r in rows:
            params.extend(r)
        return ", ".join([row] * len(rows))

    if movements:
        rows = [_movement_row(m) for m in movements]
        parts.append(
            f"m AS (INSERT INTO {MOVEMENTS} ({', '.join(MOVEMENT_COLUMNS[1:])}) "
            f"VALUES {values(rows)} RETURNING idempotency_key, id)"
        )
    if consumptions:

        def side(ref) -> tuple:
            return (None, ref.key) if isinstance(ref, NewMovement) else (ref, None)

        rows = [(*side(d), *side(c), amount) for d, c, amount in consumptions]
        if movements:  # a new row is named by its key, found among those inserted (m)
            debit, credit = "coalesce(v.debit_id, md.id)", "coalesce(v.credit_id, mc.id)"
            joins = (
                " LEFT JOIN m md ON md.idempotency_key = v.debit_key"
                " LEFT JOIN m mc ON mc.idempotency_key = v.credit_key"
            )
        else:
            debit, credit, joins = "v.debit_id", "v.credit_id", ""
        params.append(now)  # the placeholders' order: the time, then the rows
        vals = values(rows, ("bigint", "text", "bigint", "text", "numeric"))
        parts.append(
            f"c AS (INSERT INTO {CONSUMPTIONS} (debit_id, credit_id, amount, created_at) "
            f"SELECT {debit}, {credit}, v.amount, %s::timestamptz FROM (VALUES {vals}) "
            f"AS v (debit_id, debit_key, credit_id, credit_key, amount){joins})"
        )
    if lots:
        vals = values(
            [(lot.id, lot.remaining, lot.pending) for lot in lots], ("bigint", "numeric", "boolean")
        )
        parts.append(
            f"l AS (UPDATE {MOVEMENTS} t SET remaining = v.remaining, is_pending = v.pending "
            f"FROM (VALUES {vals}) AS v (id, remaining, pending) WHERE t.id = v.id)"
        )
    if debts:
        vals = values([(d.id, d.uncovered) for d in debts], ("bigint", "numeric"))
        parts.append(
            f"d AS (UPDATE {MOVEMENTS} t SET uncovered = v.uncovered "
            f"FROM (VALUES {vals}) AS v (id, uncovered) WHERE t.id = v.id)"
        )
    params.append(now)
    vals = values(
        [(b.customer_id, b.balance, b.pending, b.debt) for b in books],
        ("bigint", "numeric", "numeric", "numeric"),
    )
    parts.append(
        f"a AS (UPDATE {ACCOUNTS} t SET balance = v.balance, pending = v.pending, "
        f"debt = v.debt, updated_at = %s::timestamptz FROM (VALUES {vals}) "
        "AS v (id, balance, pending, debt) WHERE t.customer_id = v.id)"
    )
    final = "SELECT idempotency_key, id FROM m" if movements else "SELECT NULL, NULL"
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} {final}", params)
        ids = dict(cursor.fetchall())
    for movement in movements:
        movement.id = ids[movement.key]


def _update_from(cursor, update: str, join: str, columns: tuple[str, ...], rows: list) -> None:
    """`update` ... FROM the rows (as `v`) WHERE `join`: a few rows inline (VALUES), many
    through a temporary table filled with COPY (PERFORMANCE.md: the faster bulk path)."""
    names = ", ".join(c.split()[0] for c in columns)
    if len(rows) < SMALL_WRITE:
        from psycopg2.extras import execute_values

        template = "(" + ", ".join(f"%s::{c.split()[1]}" for c in columns) + ")"
        execute_values(
            cursor,
            f"{update} FROM (VALUES %s) AS v ({names}) WHERE {join}",
            rows,
            template=template,
            page_size=len(rows),
        )
        return
    table = "loyalty_update_" + "_".join(c.split()[0] for c in columns)
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} ({', '.join(columns)}) ON COMMIT DELETE ROWS"
    )
    cursor.copy_expert(
        f"COPY {table} FROM STDIN",
        io.StringIO("".join("\t".join(map(str, row)) + "\n" for row in rows)),
    )
    cursor.execute(f"{update} FROM {table} v WHERE {join}")
    cursor.execute(f"TRUNCATE {table}")  # a second write in the same transaction starts empty


def _movement_row(m: NewMovement) -> tuple:
    """A movement's values in MOVEMENT_COLUMNS' order, without the id."""
    return (
        m.customer_id,
        m.kind,
        m.amount,
        m.key,
        m.purchase_id,
        m.campaign_ref,
        m.created_at,
        m.created_by_id,
        m.channel,
        m.reason,
        m.available_at,
        m.expires_at,
        m.is_pending,
        m.remaining,
        m.uncovered,
        m.accrual_percent,
        m.status,
    )


def _insert_movements(cursor, movements: list[NewMovement]) -> None:
    """A few movements: one multi-row INSERT, the ids read back by key (unique)."""
    from psycopg2.extras import execute_values

    rows = [_movement_row(m) for m in movements]
    ids = dict(
        execute_values(
            cursor,
            f"INSERT INTO {MOVEMENTS} ({', '.join(MOVEMENT_COLUMNS[1:])}) VALUES %s "
            "RETURNING idempotency_key, id",
            rows,
            page_size=len(rows),
            fetch=True,
        )
    )
    for movement in movements:
        movement.id = ids[movement.key]


def _copy_movements(cursor, movements: list[NewMovement]) -> None:
    """Ids reserved from the sequence in one round trip, rows sent with COPY (the consumptions
    name the new movements by id without reading anything back)."""
    # The sequence looked up once, not per row (ten times faster for a batch).
    cursor.execute(
        f"SELECT nextval(s.seq) FROM (SELECT pg_get_serial_sequence('{MOVEMENTS}', 'id')"
        "::regclass AS seq OFFSET 0) s, generate_series(1, %s)",
        [len(movements)],
    )
    for movement, (pk,) in zip(movements, cursor.fetchall(), strict=True):
        movement.id = pk
    # A batch's rows share a few timestamps, channels and statuses: each is written out once.
    memo: dict[tuple[type, object], str] = {}

    def text(value) -> str:
        out = memo.get((value.__class__, value))
        if out is None:
            out = memo[(value.__class__, value)] = _copy_value(value)
        return out

    rows = []
    append = rows.append
    n = r"\N"
    for m in movements:
        # Most columns are numbers, codes and timestamps: only free text needs escaping.
        append(
            f"{m.id}\t{m.customer_id}\t{m.kind}\t{m.amount}\t{m.key.translate(_ESCAPES)}\t"
            f"{n if m.purchase_id is None else m.purchase_id}\t{text(m.campaign_ref)}\t"
            f"{text(m.created_at)}\t{n if m.created_by_id is None else m.created_by_id}\t"
            f"{text(m.channel)}\t{text(m.reason)}\t{text(m.available_at)}\t"
            f"{text(m.expires_at)}\t{'t' if m.is_pending else 'f'}\t"
            f"{n if m.remaining is None else m.remaining}\t"
            f"{n if m.uncovered is None else m.uncovered}\t"
            f"{n if m.accrual_percent is None else m.accrual_percent}\t{text(m.status)}\n"
        )
    out = io.StringIO("".join(rows))
    cursor.copy_expert(f"COPY {MOVEMENTS} ({', '.join(MOVEMENT_COLUMNS)}) FROM STDIN", out)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _write_generic(books, movements, lots, debts, now) -> None:
    objects = BonusMovement.objects.bulk_create(  # ids come back (PostgreSQL, SQLite >= 3.35)
        [
            BonusMovement(
                customer_id=m.customer_id,
                kind=m.kind,
                amount=m.amount,
                idempotency_key=m.key,
                purchase_id=m.purchase_id,
                campaign_ref=m.campaign_ref,
                created_at=m.created_at,
                created_by_id=m.created_by_id,
                channel=m.channel,
                reason=m.reason,
                available_at=m.available_at,
                expires_at=m.expires_at,
                is_pending=m.is_pending,
                remaining=m.remaining,
                uncovered=m.uncovered,
                accrual_percent=m.accrual_percent,
                status=m.status,
            )
            for m in movements
        ],
        batch_size=500,
    )
    for movement, obj in zip(movements, objects, strict=True):
        movement.id = obj.pk
    BonusConsumption.objects.bulk_create(
        [
            BonusConsumption(debit_id=_ref(d), credit_id=_ref(c), amount=amount, created_at=now)
            for b in books
            for d, c, amount in b.consumptions
        ],
        batch_size=500,
    )
    for lot in lots:
        BonusMovement.objects.filter(pk=lot.id).update(
            remaining=lot.remaining, is_pending=lot.pending
        )
    for debt in debts:
        BonusMovement.objects.filter(pk=debt.id).update(uncovered=debt.uncovered)
    for b in books:
        BonusAccount.objects.filter(customer_id=b.customer_id).update(
            balance=b.balance, pending=b.pending, debt=b.debt, updated_at=now
        )


def _copy_value(value) -> str:
    if value is None:
        return r"\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    text = str(value)
    if isinstance(value, str):
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- single-account services ----------------------------------------------------------------------


def _posted(movement: NewMovement | BonusMovement, book_or_account, replayed: bool) -> Posted:
    return Posted(
        movement_id=movement.id,
        kind=movement.kind,
        amount=movement.amount,
        replayed=replayed,
        balance=book_or_account.balance,
        pending=book_or_account.pending,
        debt=book_or_account.debt,
    )


def _replay(key: str, customer_id: int, kind: str, amount: Decimal) -> Posted | None:
    """The movement a key already posted (a retried delivery), or None. The same key for a
    different movement is refused."""
    movement = BonusMovement.objects.filter(idempotency_key=key).first()
    if movement is None:
        return None
    if (movement.customer_id, movement.kind, movement.amount) != (customer_id, kind, amount):
        raise field_error(
            "idempotency_key",
            _("This key was already used for a different movement."),
            "idempotency_key_reused",
        )
    account = BonusAccount.objects.get(customer_id=movement.customer_id)
    return _posted(movement, account, replayed=True)


def _key(key: str | None, field: str = "idempotency_key") -> str:
    if key is None:
        return uuid.uuid4().hex
    key = str(key).strip()
    if not key or len(key) > BonusMovement._meta.get_field("idempotency_key").max_length:
        raise field_error(field, _("Give a key of 1 to 120 characters."), "invalid")
    return key


def bonus_grant(
    customer_id: int,
    kind: str,
    amount,
    *,
    key: str | None = None,
    reason: str = "",
    user=None,
    channel: str = "",
    campaign_ref: str = "",
    policy: BonusPolicy | None = None,
    now: dt.datetime | None = None,
) -> Posted:
    """A credit that is not an accrual: welcome, birthday, campaign bonus, positive adjustment."""
    if kind not in {
        MovementKind.WELCOME,
        MovementKind.BIRTHDAY,
        MovementKind.CAMPAIGN,
        MovementKind.ADJUSTMENT,
        MovementKind.REDEMPTION_REVERSAL,
    }:
        raise ValueError(f"not a grant: {kind}")
    amount = parse_amount(amount, "amount")
    key = _key(key)
    now = now or timezone.now()
    policy = policy or BonusPolicy.load()
    with transaction.atomic():
        book = open_books([customer_id])[customer_id]
        replay = _replay(key, customer_id, kind, amount)
        if replay:
            return replay
        # Only accruals wait for activation: a grant can be spent at once.
        available_at, expires_at = policy.lot_dates(now, wait=False)
        movement = book.credit(
            kind,
            amount,
            key,
            now,
            available_at=available_at,
            expires_at=expires_at,
            reason=reason,
            created_by_id=getattr(user, "pk", None),
            channel=channel,
            campaign_ref=campaign_ref,
        )
        write_books([book])
        return _posted(movement, book, replayed=False)


def bonus_adjust(
    customer_id: int,
    amount,
    *,
    reason: str,
    user=None,
    key: str | None = None,
    channel: str = "admin",
    now: dt.datetime | None = None,
) -> Posted:
    """A manager's adjustment: a signed amount with a mandatory reason. A negative one takes
    available bonuses and leaves debt for what they do not cover."""
    reason = (reason or "").strip()
    if not reason:
        raise field_error("reason", _("Give the reason for the adjustment."), "required")
    if isinstance(amount, str) and amount.strip().startswith("-"):
        sign, amount = -1, amount.strip()[1:]
    elif isinstance(amount, Decimal | int) and not isinstance(amount, bool) and amount < 0:
        sign, amount = -1, -amount
    else:
        sign = 1
    amount = parse_amount(amount, "amount")
    if sign > 0:
        return bonus_grant(
            customer_id,
            MovementKind.ADJUSTMENT,
            amount,
            key=key,
            reason=reason,
            user=user,
            channel=channel,
            now=now,
        )
    key = _key(key)
    now = now or timezone.now()
    with transaction.atomic():
        book = open_books([customer_id])[customer_id]
        replay = _replay(key, customer_id, MovementKind.ADJUSTMENT, -amount)
        if replay:
            return replay
        movement = book.reverse(
            MovementKind.ADJUSTMENT,
            amount,
            key,
            now,
            reason=reason,
            created_by_id=getattr(user, "pk", None),
            channel=channel,
        )
        write_books([book])
        return _posted(movement, book, replayed=False)


# The checkout redemption on PostgreSQL: one call of the function migration 0011 defines (keyed
# insert, conditional balance update, then the unexpired lots consumed soonest-expiring first, each
# statement with a fresh snapshot once the account row is locked). A refusal raises REFUSED with
# what can be spent as its detail; a replayed key returns no row.
REDEEM_SQL = (
    "SELECT * FROM loyalty_bonus_redeem(%(customer)s, %(amount)s, %(key)s, %(purchase)s, "
    "%(now)s, %(user)s, %(channel)s, %(reason)s)"
)
REFUSED = "PB001"


def bonus_redeem(
    customer_id: int,
    amount,
    *,
    key: str,
    purchase_id: int | None = None,
    user=None,
    channel: str = "",
    reason: str = "",
    field_name: str = "amount",
    now: dt.datetime | None = None,
) -> Posted:
    """Spends `amount` bonuses at checkout; refused (InsufficientBonus, naming `field_name`)
    unless the available balance covers it. The same key again returns the first result."""
    amount = parse_amount(amount, field_name)
    key = _key(key)
    now = now or timezone.now()
    if not _postgres():
        with transaction.atomic():
            book = open_books([customer_id])[customer_id]
            replay = _replay(key, customer_id, MovementKind.REDEMPTION, -amount)
            if replay:
                return replay
            movement = book.redeem(
                amount,
                key,
                now,
                field_name=field_name,
                unexpired_only=True,
                purchase_id=purchase_id,
                created_by_id=getattr(user, "pk", None),
                channel=channel,
                reason=reason,
            )
            write_books([book])
            return _posted(movement, book, replayed=False)
    params = {
        "customer": customer_id,
        "amount": amount,
        "key": key,
        "purchase": purchase_id,
        "now": now,
        "user": getattr(user, "pk", None),
        "channel": channel,
        "reason": reason,
    }
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(REDEEM_SQL, params)
            row = cursor.fetchone()
    except DatabaseError as error:
        cause = error.__cause__
        if getattr(cause, "pgcode", None) != REFUSED:
            raise
        raise InsufficientBonus(field_name, amount, Decimal(cause.diag.message_detail)) from None
    if row is None:  # the key was posted before: a retried request
        replay = _replay(key, customer_id, MovementKind.REDEMPTION, -amount)
        if replay is None:  # pragma: no cover - the conflicting row is committed
            raise RuntimeError(f"key {key} conflicted but is not found")
        return replay
    debit, balance, pending, debt = row
    return Posted(debit, MovementKind.REDEMPTION, -amount, False, balance, pending, debt)
