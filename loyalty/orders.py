"""Orders from the app, the website, the contact centre and the till online: placed, completed,
cancelled, returned (wholly or by lines).

An order is a `Purchase` whose number (`external_id`) is its channel's. It is placed (awaiting
pick-up or delivery: it holds the bonuses it spends and counts for nothing else), then completed
— here, or by the till sale whose `order_ref` names it (`customers.pos_import`) — or cancelled.
Each service is one transaction: the order and its lines change, then `purchase_bonuses_sync`
posts what the new state calls for (the spend redeemed at placement, the accrual on completion,
both reversed on cancel or return). A refusal leaves nothing written.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Purchase, PurchaseLine, PurchaseType, Source, Store
from customers.models.purchases import ORDER_SOURCES
from customers.purchase_hooks import natural_key
from customers.signals import purchases_changed
from pharmacrm.prepared import execute_prepared

from .bonus_rules import ZERO, BonusPolicy, round_money
from .checkout import Quote, checkout_quote
from .config_cache import loyalty_config
from .ledger_purchases import Outcome, PurchaseBonuses, PurchaseState, purchase_bonuses_sync
from .order_selectors import Balance, OrderBonuses, money

Status = Purchase.Status
Fulfilment = Purchase.Fulfilment

# The purchase type of an order by how it reaches the customer (the reference list's codes; the
# customers app's data migration creates them).
RETAIL, PREORDER, DELIVERY = "retail", "preorder", "delivery"
_TYPE_NAMES = {RETAIL: "Розничная продажа", PREORDER: "Предзаказ", DELIVERY: "Доставка"}


class OrderConflict(Exception):
    """The order's state (or another order) refuses the request: `code` is stable, `field` the
    request field it concerns, if any."""

    def __init__(self, message: str, *, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


@dataclass(frozen=True)
class OrderLine:
    sku: str
    qty: Decimal
    price: Decimal


@dataclass(frozen=True)
class ReturnLine:
    sku: str
    qty: Decimal


@dataclass(frozen=True)
class PlacedOrder:
    order: Purchase  # with its store and purchase type
    quote: Quote  # what the order was priced at: the discount applied, the spend cap, the lines
    bonuses: OrderBonuses  # what the ledger holds for it now
    balance: Balance  # the customer's bonuses after it


def order_place(
    *,
    customer_id: int,
    number: str,
    source: str,
    lines: Sequence[OrderLine],
    store_code: str | None = None,
    delivery: bool = False,
    bonus_to_spend: Decimal = ZERO,
    status: str = Status.PLACED,
    channel: str = "",
    now: dt.datetime | None = None,
) -> PlacedOrder:
    """Place order `number` of channel `source` for a customer (or record a till's online sale,
    `source` pos, already completed): priced by `checkout_quote` (the customer's current
    discount), `bonus_to_spend` redeemed now within the quote's cap.

    Raises ValidationError for bad input (naming the field: customer, store, lines.<i>.sku,
    bonus_to_spend), OrderConflict when the balance does not cover the spend
    (`insufficient_bonus`) or the channel already has an order with this number
    (`order_exists`)."""
    if status not in (Status.PLACED, Status.COMPLETED):
        raise ValidationError({"status": _("An order is placed or completed.")}, code="invalid")
    now = now or timezone.now()
    # Every refusal is found before anything is written and kept, not raised, inside the block:
    # within a caller's transaction (the API's Idempotency-Key one) the block then needs no
    # savepoint of its own, two round trips less per order.
    with transaction.atomic(savepoint=False):
        try:
            order, quote = _priced_order(
                customer_id=customer_id,
                number=number,
                source=source,
                lines=lines,
                store_code=store_code,
                delivery=delivery,
                bonus_to_spend=bonus_to_spend,
                status=status,
                now=now,
            )
        except (ValidationError, OrderConflict) as error:
            placed = error
        else:
            placed = _place(order, quote, channel=channel)
    if isinstance(placed, Exception):
        raise placed
    return placed


def _place(order: Purchase, quote: Quote, *, channel: str) -> PlacedOrder | OrderConflict:
    """order_place's writes, inside its transaction: the order placed, or why not (with nothing
    written: the account is locked and the spend checked first, then the order and its ledger
    rows are written)."""
    # The order's bonuses are worked out (the account locked, the spend checked against the
    # balance) before it is written: the ledger holds nothing for a new order, and its lines
    # and rules are the quote's, so neither is read again.
    ref = natural_key(order.source, order.store_id, order.external_id)
    state = PurchaseState(
        ref=ref,
        natural_key=ref,
        customer_id=order.customer_id,
        status=order.status,
        purchased_at=order.purchased_at,
        purchase_date=order.purchase_date,
        purchase_type_id=order.purchase_type_id,
        lines=[(line.product_id, line.amount) for line in quote.lines],
        discount=order.discount,
        spent=order.bonus_spent,
        is_new=True,
    )
    batch = PurchaseBonuses(policy=quote.policy, channel=channel, field_name="bonus_to_spend")
    # The quote worked out the status on a purchase that day (the order's), counting it.
    batch.apply([state], statuses={ref: quote.status})
    if ref in batch.rejected:
        if _number_taken(order.source, order.store, order.external_id):
            # A concurrent request with this number (another Idempotency-Key) held the account
            # and won: that, not the balance it left, is why this one is refused.
            return _order_exists(order.external_id)
        error = batch.rejected[ref]
        return OrderConflict(error.messages[0], code="insufficient_bonus", field="bonus_to_spend")
    if not _insert_order(order, quote.lines):
        # A concurrent request with the same number (another Idempotency-Key) won.
        return _order_exists(order.external_id)
    batch.set_purchase_ids({ref: order.pk})
    batch.write()
    if order.status == Status.COMPLETED:
        _changed(order)
    outcome = batch.outcomes.get(ref, Outcome())
    book = batch.books[order.customer_id]
    return PlacedOrder(
        order=order,
        quote=quote,
        bonuses=OrderBonuses(spent=money(outcome.spent), accrued=money(outcome.accrued)),
        balance=Balance(
            available=money(book.balance), pending=money(book.pending), debt=money(book.debt)
        ),
    )


def _priced_order(
    *,
    customer_id: int,
    number: str,
    source: str,
    lines: Sequence[OrderLine],
    store_code: str | None,
    delivery: bool,
    bonus_to_spend: Decimal,
    status: str,
    now: dt.datetime,
) -> tuple[Purchase, Quote]:
    """The order (not written yet) priced by the checkout quote. Raises ValidationError naming
    the field, OrderConflict (`order_exists`)."""
    store, taken = _store_and_number(store_code, source, number) if store_code else (None, None)
    if source == Source.POS:
        if store is None:
            raise ValidationError({"store": _("A till sale names its store.")}, code="required")
        fulfilment, type_code = "", RETAIL
    elif delivery:
        if store is not None:
            raise ValidationError(
                {"store": _("An order is picked up in a store or delivered, not both.")},
                code="invalid",
            )
        fulfilment, type_code = Fulfilment.DELIVERY, DELIVERY
    else:
        if store is None:
            raise ValidationError(
                {"store": _("Give the pick-up store's code, or ask for delivery.")},
                code="required",
            )
        fulfilment, type_code = Fulfilment.PICKUP, PREORDER
    if taken is None:
        taken = _number_taken(source, store, number)
    if taken:
        raise _order_exists(number)
    purchase_type = _purchase_type(type_code)
    try:
        quote = checkout_quote(
            customer_id,
            [(line.sku, line.qty, line.price) for line in lines],
            on=timezone.localdate(now),
            purchase_type_id=purchase_type.pk,
        )
    except ValidationError as error:
        raise _api_field_names(error) from None
    if bonus_to_spend > quote.max_spend_by_share:
        raise ValidationError(
            {
                "bonus_to_spend": _(
                    "At most %(max)s bonuses may pay for this order (the rules' share of "
                    "what it costs in products that accept bonuses)."
                )
                % {"max": quote.max_spend_by_share}
            },
            code="max_spend",
        )
    order = Purchase(
        source=source,
        store=store,
        external_id=number,
        customer_id=customer_id,
        purchased_at=now,
        purchase_date=timezone.localdate(now),
        purchase_type=purchase_type,
        status=status,
        total=quote.total,
        discount=quote.discount_amount,
        bonus_spent=bonus_to_spend,
        order_ref=number if source in ORDER_SOURCES else "",
        fulfilment=fulfilment,
    )
    return order, quote


def order_complete(
    *,
    order_id: int,
    store_code: str | None = None,
    channel: str = "",
    now: dt.datetime | None = None,
) -> Purchase:
    """Complete a placed order (picked up or delivered) now, optionally in store `store_code`:
    its held spend stays, its accrual is posted. Raises Purchase.DoesNotExist, OrderConflict
    (`order_not_placed`), ValidationError (store)."""
    now = now or timezone.now()
    with transaction.atomic():
        order = _locked(order_id)
        if order.status != Status.PLACED:
            raise _not_in(order, Status.PLACED, _("Only a placed order can be completed."))
        fields = ["status", "purchased_at", "purchase_date", "updated_at"]
        if store_code:
            order.store = _store(store_code)
            fields.append("store")
        order.status = Status.COMPLETED
        order.purchased_at = now
        order.purchase_date = timezone.localdate(now)
        order.save(update_fields=fields)
        purchase_bonuses_sync(order, channel=channel)
        _changed(order)
    return order


def order_cancel(*, order_id: int, channel: str = "") -> Purchase:
    """Cancel a placed order: the bonuses it held are refunded. Raises Purchase.DoesNotExist,
    OrderConflict (`order_not_placed`: a completed order is returned instead)."""
    with transaction.atomic():
        order = _locked(order_id)
        if order.status != Status.PLACED:
            raise _not_in(order, Status.PLACED, _("Only a placed order can be cancelled."))
        order.status = Status.CANCELLED
        order.save(update_fields=["status", "updated_at"])
        purchase_bonuses_sync(order, channel=channel)
    return order


def order_return(
    *, order_id: int, lines: Sequence[ReturnLine] | None = None, channel: str = ""
) -> Purchase:
    """Return a completed order (or any completed purchase): wholly without `lines`, else those
    quantities of its products.

    A partial return reduces the lines (a line returned whole goes), spreads the money discount
    over what is kept in proportion, and keeps the share of the bonuses spent that the kept
    eligible amount bears; the ledger then refunds the rest of the spend and reverses the accrual
    in the same proportion. Returning every line is a whole return. Raises
    Purchase.DoesNotExist, OrderConflict (`order_not_completed`), ValidationError naming
    lines.<i>.sku / lines.<i>.qty."""
    with transaction.atomic():
        order = _locked(order_id)
        if order.status != Status.COMPLETED:
            raise _not_in(order, Status.COMPLETED, _("Only a completed order can be returned."))
        if lines and not _return_lines(order, lines):
            order.save(update_fields=["total", "discount", "bonus_spent", "updated_at"])
        else:
            order.status = Status.RETURNED
            order.save(update_fields=["status", "updated_at"])
        purchase_bonuses_sync(order, channel=channel)
        _changed(order)
    return order


# -- internals ---------------------------------------------------------------------------------


def _return_lines(order: Purchase, returned: Sequence[ReturnLine]) -> bool:
    """Takes the returned quantities off the order's lines; True when nothing is left (then the
    lines are left as they were, for a whole return)."""
    stored = list(order.lines.select_related("product").order_by("id"))
    by_sku: dict[str, list[PurchaseLine]] = defaultdict(list)
    for line in stored:
        by_sku[line.product.sku].append(line)
    wanted: dict[str, Decimal] = defaultdict(Decimal)
    first_index: dict[str, int] = {}
    errors: dict[str, str] = {}
    for index, line in enumerate(returned):
        if line.sku not in by_sku:
            errors[f"lines.{index}.sku"] = _("The order has no line with this product.")
            continue
        wanted[line.sku] += line.qty
        first_index.setdefault(line.sku, index)
    for sku, qty in wanted.items():
        held = sum((line.qty for line in by_sku[sku]), Decimal(0))
        if qty > held:
            errors[f"lines.{first_index[sku]}.qty"] = _(
                "The order holds %(qty)s of this product."
            ) % {"qty": held.normalize()}
    if errors:
        raise ValidationError(errors, code="invalid")
    if all(
        qty == sum((line.qty for line in by_sku[sku]), Decimal(0)) for sku, qty in wanted.items()
    ) and set(wanted) == set(by_sku):
        return True

    policy = BonusPolicy.load(products=[line.product_id for line in stored])
    old_subtotal = sum((line.amount for line in stored), ZERO)
    old_eligible = policy.eligible_amount(_amounts(stored), order.discount)
    old_total = order.total
    gone, kept_changed = [], []
    for sku, qty in wanted.items():
        for line in reversed(by_sku[sku]):  # the last line of a product first
            if not qty:
                break
            take = min(qty, line.qty)
            qty -= take
            line.qty -= take
            if line.qty:
                line.amount = round_money(line.qty * line.price)
                kept_changed.append(line)
            else:
                gone.append(line.pk)
    kept = [line for line in stored if line.pk not in gone]
    if gone:
        PurchaseLine.objects.filter(pk__in=gone).delete()
    if kept_changed:
        PurchaseLine.objects.bulk_update(kept_changed, ["qty", "amount"])

    subtotal = sum((line.amount for line in kept), ZERO)
    discount = round_money(order.discount * subtotal / old_subtotal) if old_subtotal else ZERO
    order.discount = discount
    order.total = max(subtotal - discount, ZERO)
    # Bonuses pay for eligible lines: the spend kept is the kept eligible amount's share (the
    # total's share when nothing was eligible, as a till may have allowed).
    eligible = policy.eligible_amount(_amounts(kept), discount)
    if old_eligible:
        spent = round_money(order.bonus_spent * eligible / old_eligible)
    elif old_total:
        spent = round_money(order.bonus_spent * order.total / old_total)
    else:
        spent = ZERO
    order.bonus_spent = min(spent, order.total)
    return False


def _amounts(lines: Sequence[PurchaseLine]) -> list[tuple[int, Decimal]]:
    return [(line.product_id, line.amount) for line in lines]


def _locked(order_id: int) -> Purchase:
    return Purchase.objects.select_for_update(of=("self",)).get(pk=order_id)


def _not_in(order: Purchase, wanted: str, message: str) -> OrderConflict:
    code = "order_not_placed" if wanted == Status.PLACED else "order_not_completed"
    return OrderConflict(
        _("%(message)s This one is %(status)s.")
        % {"message": message, "status": order.get_status_display().lower()},
        code=code,
        field="status",
    )


def _order_exists(number: str) -> OrderConflict:
    return OrderConflict(
        _("This channel already has an order numbered %(number)s.") % {"number": number},
        code="order_exists",
        field="number",
    )


def _number_taken(source: str, store: Store | None, number: str) -> bool:
    taken = Purchase.objects.filter(source=source, external_id=number)
    if source not in ORDER_SOURCES:
        taken = taken.filter(store=store)  # till sales are numbered per store
    return taken.exists()


def _store(code: str) -> Store:
    return _checked_store(Store.objects.filter(code=code).first())


_STORE_FIELDS = ("id", "code", "name", "city", "address", "time_zone", "is_active")
_STORE_AND_NUMBER_SQL = """
SELECT {fields}, EXISTS (
    SELECT 1 FROM {purchases} p
    WHERE p.source = '{source}' AND p.external_id = %(number)s {per_store}
)
FROM {stores} s WHERE s.code = %(code)s
"""


@functools.cache
def _store_and_number_sql(source: str) -> str:
    """The statement for a channel. Its source is written in, not a parameter: the plan
    PostgreSQL keeps for a prepared statement must see it to use the order numbers' partial
    index (a plan for any source reads the ten million purchases: 0.5 s, not 0.06 ms)."""
    if source not in Source.values:  # a code from the reference list, never a caller's text
        raise ValueError(f"unknown source {source!r}")
    return _STORE_AND_NUMBER_SQL.format(
        fields=", ".join(f"s.{name}" for name in _STORE_FIELDS),
        purchases=Purchase._meta.db_table,
        stores=Store._meta.db_table,
        source=source,
        # Till sales are numbered per store.
        per_store="" if source in ORDER_SOURCES else "AND p.store_id = s.id",
    )


def _store_and_number(code: str, source: str, number: str) -> tuple[Store, bool]:
    """The open store with this code, and whether the channel already has an order with this
    number (in that store, for a till), in one statement (plain SQL: the ORM's building of this
    query cost four times its running)."""
    sql = _store_and_number_sql(source)
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, {"number": number, "code": code})
        row = cursor.fetchone()
    if row is None:
        return _checked_store(None), False
    store = Store(**dict(zip(_STORE_FIELDS, row[:-1], strict=True)))
    store._state.adding, store._state.db = False, connection.alias
    return _checked_store(store), row[-1]


_PURCHASE_FIELDS = [f for f in Purchase._meta.concrete_fields if not f.primary_key]


@functools.cache
def _insert_order_sql(vendor: str) -> str:
    """The order's INSERT (... ON CONFLICT DO NOTHING RETURNING id), with its lines' on
    PostgreSQL: built once, one text for execute_prepared."""
    q = connection.ops.quote_name
    columns = ", ".join(q(f.column) for f in _PURCHASE_FIELDS)
    insert = (
        f"INSERT INTO {q(Purchase._meta.db_table)} ({columns}) "
        f"VALUES ({', '.join(['%s'] * len(_PURCHASE_FIELDS))}) ON CONFLICT DO NOTHING RETURNING id"
    )
    if vendor != "postgresql":
        return insert
    return (
        f"WITH p AS ({insert}), l AS ("
        f"INSERT INTO {q(PurchaseLine._meta.db_table)} "
        "(purchase_id, product_id, qty, price, amount) "
        "SELECT p.id, x.product, x.qty, x.price, x.amount FROM p, "
        "unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[]) "
        "AS x (product, qty, price, amount)"
        ") SELECT id FROM p"
    )


def _insert_order(order: Purchase, lines: Sequence) -> bool:
    """Writes a new order and its lines (QuoteLine: product_id, qty, price, amount); False, and
    nothing written, when its channel has the number already (a concurrent order that won:
    every unique constraint of a purchase is on its number). INSERT ... ON CONFLICT DO NOTHING,
    not an IntegrityError caught under a savepoint; on PostgreSQL one statement for both (the
    ORM's insert and bulk_create cost more to build than to run)."""
    values = [f.get_db_prep_save(f.pre_save(order, True), connection) for f in _PURCHASE_FIELDS]
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            values += [
                [line.product_id for line in lines],
                [line.qty for line in lines],
                [line.price for line in lines],
                [line.amount for line in lines],
            ]
        execute_prepared(cursor, _insert_order_sql(connection.vendor), values)
        row = cursor.fetchone()
    if row is None:
        return False
    order.pk = row[0]
    order._state.adding, order._state.db = False, connection.alias
    if not postgres:
        PurchaseLine.objects.bulk_create(
            [
                PurchaseLine(
                    purchase=order,
                    product_id=line.product_id,
                    qty=line.qty,
                    price=line.price,
                    amount=line.amount,
                )
                for line in lines
            ]
        )
    return True


def _checked_store(store: Store | None) -> Store:
    if store is None:
        raise ValidationError({"store": _("No store with this code.")}, code="does_not_exist")
    if not store.is_active:
        raise ValidationError({"store": _("This store is closed.")}, code="inactive")
    return store


def _purchase_type(code: str) -> PurchaseType:
    known = loyalty_config().purchase_types.get(code)
    if known is not None:
        return known
    return PurchaseType.objects.get_or_create(code=code, defaults={"name": _TYPE_NAMES[code]})[0]


def _api_field_names(error: ValidationError) -> ValidationError:
    """The quote's "lines[0].product" as the API's dotted "lines.0.sku"."""
    if not hasattr(error, "error_dict"):
        return error
    renamed = {}
    for name, errors in error.error_dict.items():
        if name.startswith("lines["):
            index, _sep, rest = name[len("lines[") :].partition("]")
            rest = rest.lstrip(".")
            name = f"lines.{index}.{'sku' if rest == 'product' else rest}"
        renamed[name] = errors
    return ValidationError(renamed)


def _changed(order: Purchase) -> None:
    """Figures and statuses follow from completed purchases: recomputed once this commits."""
    if order.customer_id is not None:
        purchases_changed.send(sender=Purchase, customer_ids={order.customer_id})
