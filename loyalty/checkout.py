"""The checkout question, one answer for every channel: "customer X buys these lines: which
discount applies and how many bonuses may be spent?"

The till, the app, the website and the contact centre all call `checkout_quote`; it takes no
argument saying who asks, so the same customer, lines and day give the same quote everywhere.
It writes nothing: redeeming is the ledger's business, which checks the balance again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer, Product, Purchase
from pharmacrm.prepared import execute_prepared
from pharmacrm.validation import field_error

from .bonus_rules import HUNDRED, KOPECK, ZERO, BonusPolicy, parse_amount, round_money
from .config_cache import loyalty_config
from .discounts import (
    AppliedDiscount,
    NextTier,
    PersonalOffer,
    lifetime_total,
    outlook_from,
    personal_offers,
)
from .models import BonusAccount, BonusDiscountType, PersonalDiscount
from .purchase_status import months_window_start, status_at_purchase, status_from_months
from .status_rules import Thresholds

QTY_PLACES = Decimal("0.001")
MAX_QTY = Decimal("9999999.999")  # PurchaseLine.qty: 10 digits, 3 of them decimals
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class QuoteLine:
    product_id: int
    sku: str
    qty: Decimal
    price: Decimal
    amount: Decimal  # qty × price, rounded half-up to kopecks
    bonus_eligible: bool  # earns bonuses and may be paid with them
    name: str = field(default="", compare=False)  # the product's (an order's answer shows it)

    def as_dict(self) -> dict:
        return {
            "product_id": self.product_id,
            "sku": self.sku,
            "qty": str(self.qty),
            "price": str(self.price),
            "amount": str(self.amount),
            "bonus_eligible": self.bonus_eligible,
        }


@dataclass(frozen=True)
class Quote:
    """The checkout's answer. Money is Decimal with two places; `as_dict` gives it as strings."""

    customer_id: int
    on: dt.date
    lines: tuple[QuoteLine, ...]
    subtotal: Decimal  # the lines' amounts
    discount: AppliedDiscount | None
    discount_percent: Decimal
    discount_amount: Decimal  # subtotal × percent, rounded half-up
    total: Decimal  # subtotal - discount_amount: what is paid in money and bonuses
    eligible_amount: Decimal  # the eligible lines' share of the total
    max_spend_by_share: Decimal  # the rules' maximum share of the eligible amount
    max_spend: Decimal  # min(max_spend_by_share, balance)
    balance: Decimal  # available bonuses (1 bonus = 1 rouble)
    pending: Decimal  # accrued, not yet available
    debt: Decimal  # taken back by returns; later accruals pay it off first
    status: str  # the customer status this purchase accrues at
    accrual_percent: Decimal
    accrual_without_spending: Decimal  # what the purchase earns if no bonuses are spent
    accrual_with_max_spend: Decimal  # ... if `max_spend` bonuses are spent
    lifetime_total: Decimal
    next_tier: NextTier | None  # the cumulative tier that would raise the discount
    # The rules the quote was computed with (an order posts its bonuses with the same ones).
    policy: BonusPolicy | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "on": self.on.isoformat(),
            "lines": [line.as_dict() for line in self.lines],
            "subtotal": str(self.subtotal),
            "discount": self.discount.as_dict() if self.discount else None,
            "discount_percent": str(self.discount_percent),
            "discount_amount": str(self.discount_amount),
            "total": str(self.total),
            "eligible_amount": str(self.eligible_amount),
            "max_spend_by_share": str(self.max_spend_by_share),
            "max_spend": str(self.max_spend),
            "balance": {
                "available": str(self.balance),
                "pending": str(self.pending),
                "debt": str(self.debt),
            },
            "status": self.status,
            "accrual_percent": str(self.accrual_percent),
            "accrual_without_spending": str(self.accrual_without_spending),
            "accrual_with_max_spend": str(self.accrual_with_max_spend),
            "lifetime_total": str(self.lifetime_total),
            "next_tier": self.next_tier.as_dict() if self.next_tier else None,
        }


def checkout_quote(
    customer_id: int,
    lines: Iterable[Sequence],
    *,
    on: dt.date | None = None,
    purchase_type_id: int | None = None,
    policy: BonusPolicy | None = None,
) -> Quote:
    """Price `lines` for customer `customer_id` on day `on` (default today): the discount that
    applies, how many bonuses may be spent and what the purchase would earn.

    Each line is (product id or SKU, quantity, price): quantity > 0 with at most three decimals,
    price >= 0 with at most two, both as Decimal, int or str (never float). Bad input raises one
    ValidationError naming every bad field as "lines[<index from 0>].<product|qty|price>", or
    "lines" / "customer". `purchase_type_id` selects the accrual overrides of that purchase
    type; `policy` is a BonusPolicy already loaded (default: loaded now, so a rule saved in the
    admin applies to the next quote)."""
    day = on or timezone.localdate()
    parsed, prescription_only, names = _parse_lines(lines)
    th = loyalty_config().thresholds
    facts = _customer_facts(customer_id, day, th)
    if facts is None:
        raise field_error("customer", _("No such customer."), "invalid")

    policy = policy or BonusPolicy.load(
        products={line[0] for line in parsed}, prescription_only=prescription_only
    )
    quote_lines = tuple(
        QuoteLine(
            product_id=product_id,
            sku=sku,
            qty=qty,
            price=price,
            amount=round_money(qty * price),
            bonus_eligible=product_id not in policy.excluded_products,
            name=names.get(product_id, ""),
        )
        for product_id, sku, qty, price in parsed
    )
    subtotal = sum((line.amount for line in quote_lines), ZERO)

    outlook = outlook_from(facts.lifetime_total, facts.personal)
    percent = outlook.applied.percent if outlook.applied else ZERO
    discount_amount = round_money(subtotal * percent / HUNDRED)
    eligible = policy.eligible_amount(
        ((line.product_id, line.amount) for line in quote_lines), discount_amount
    )
    by_share = policy.max_spend(eligible)
    balance, pending, debt = facts.balance, facts.pending, facts.debt
    max_spend = min(by_share, balance)

    status = facts.status
    accrual_percent = policy.percent(status, purchase_type_id)
    return Quote(
        customer_id=customer_id,
        on=day,
        lines=quote_lines,
        subtotal=subtotal,
        discount=outlook.applied,
        discount_percent=percent,
        discount_amount=discount_amount,
        total=subtotal - discount_amount,
        eligible_amount=eligible,
        max_spend_by_share=by_share,
        max_spend=max_spend,
        balance=balance,
        pending=pending,
        debt=debt,
        status=status,
        accrual_percent=accrual_percent,
        accrual_without_spending=policy.accrual(eligible, ZERO, accrual_percent),
        accrual_with_max_spend=policy.accrual(eligible, max_spend, accrual_percent),
        lifetime_total=outlook.lifetime_total,
        next_tier=outlook.next_tier,
        policy=policy,
    )


def parse_qty(value, field: str) -> Decimal:
    """A quantity from input: a decimal > 0 with at most three places (a pack split into doses
    is 0.25, 1.5, ...). Anything else raises ValidationError naming `field`."""
    if isinstance(value, float | bool):
        raise field_error(field, _('Give the quantity as a decimal string, e.g. "1.5".'), "invalid")
    try:
        qty = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise field_error(field, _("Not a number."), "invalid") from None
    if not qty.is_finite():
        raise field_error(field, _("Not a number."), "invalid")
    # Bounds before rounding: quantize() cannot round a number this large (-1e30 included).
    if qty <= 0:
        raise field_error(field, _("Must be greater than zero."), "min_value")
    if qty > MAX_QTY:
        raise field_error(field, _("Too large."), "max_value")
    if qty != qty.quantize(QTY_PLACES):
        raise field_error(field, _("At most three decimal places."), "precision")
    return qty.quantize(QTY_PLACES)


def _parse_lines(
    lines: Iterable[Sequence],
) -> tuple[list[tuple[int, str, Decimal, Decimal]], set[int], dict[int, str]]:
    """(product id, SKU, qty, price) per line, which of the products are prescription-only and
    their names, or one ValidationError with every problem."""
    if isinstance(lines, str | bytes | Mapping):
        raise field_error("lines", _("Give a list of lines."), "invalid")
    errors: dict[str, list] = {}
    given: list[tuple[int, int | str, Decimal, Decimal]] = []
    for index, line in enumerate(lines):
        prefix = f"lines[{index}]"
        if isinstance(line, str | bytes | Mapping) or not isinstance(line, Sequence):
            errors[prefix] = [_("A line is (product, quantity, price).")]
            continue
        if len(line) != 3:
            errors[prefix] = [_("A line is (product, quantity, price).")]
            continue
        reference, qty, price = line
        ok = True
        if isinstance(reference, str):
            reference = reference.strip()
        if isinstance(reference, bool) or reference == "" or not isinstance(reference, int | str):
            errors[f"{prefix}.product"] = [_("Give a product id or SKU.")]
            ok = False
        try:
            qty = parse_qty(qty, f"{prefix}.qty")
        except ValidationError as error:
            errors.update(error.error_dict)  # keeps the codes (min_value, precision, ...)
            ok = False
        try:
            price = parse_amount(price, f"{prefix}.price", allow_zero=True)
        except ValidationError as error:
            errors.update(error.error_dict)  # keeps the codes (min_value, precision, ...)
            ok = False
        if ok:
            given.append((index, reference, qty, price))
    if not given and not errors:
        raise field_error("lines", _("At least one line."), "required")

    # An id no product can have is simply not found (and never reaches the database).
    ids = {ref for _index, ref, _q, _p in given if isinstance(ref, int) and 0 < ref <= MAX_ID}
    skus = {ref for _index, ref, _q, _p in given if isinstance(ref, str)}
    by_id: dict[int, str] = {}
    by_sku: dict[str, int] = {}
    prescription_only: set[int] = set()
    names: dict[int, str] = {}
    if ids or skus:
        for pk, sku, name, rx in _products(ids, skus):
            by_id[pk] = sku
            by_sku[sku] = pk
            names[pk] = name
            if rx:
                prescription_only.add(pk)

    parsed = []
    for index, reference, qty, price in given:
        if isinstance(reference, int):
            product_id, sku = reference, by_id.get(reference)
            missing = sku is None
            message = _("No product with id %(id)s.") % {"id": reference}
        else:
            product_id, sku = by_sku.get(reference), reference
            missing = product_id is None
            message = _("No product with SKU %(sku)s.") % {"sku": reference}
        if missing:
            errors[f"lines[{index}].product"] = [message]
            continue
        parsed.append((product_id, sku, qty, price))
    if errors:
        raise ValidationError(errors)
    return parsed, prescription_only, names


_PRODUCTS_SQL = (
    f"SELECT id, sku, name, prescription_only FROM {Product._meta.db_table} "
    "WHERE id = ANY(%s::bigint[]) OR sku = ANY(%s::varchar[])"
)


def _products(ids: set[int], skus: set[str]) -> list[tuple[int, str, str, bool]]:
    """(id, SKU, name, prescription-only) of the products with these ids or SKUs. Plain SQL:
    on a quote the ORM's building of this query cost more than running it."""
    if connection.vendor == "postgresql":
        # Arrays: one statement text whatever the basket, prepared once per connection.
        with connection.cursor() as cursor:
            execute_prepared(cursor, _PRODUCTS_SQL, [sorted(ids), sorted(skus)])
            return [(pk, sku, name, bool(rx)) for pk, sku, name, rx in cursor.fetchall()]
    q = connection.ops.quote_name
    matches = []
    if ids:
        matches.append(f"{q('id')} IN ({', '.join(['%s'] * len(ids))})")
    if skus:
        matches.append(f"{q('sku')} IN ({', '.join(['%s'] * len(skus))})")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {q('id')}, {q('sku')}, {q('name')}, {q('prescription_only')} "
            f"FROM {q(Product._meta.db_table)} WHERE {' OR '.join(matches)}",
            [*ids, *skus],
        )
        return [(pk, sku, name, bool(rx)) for pk, sku, name, rx in cursor.fetchall()]


@dataclass(frozen=True)
class _Facts:
    """What a quote reads about the customer."""

    balance: Decimal
    pending: Decimal
    debt: Decimal
    lifetime_total: Decimal
    personal: list[PersonalOffer]
    status: str


def _customer_facts(customer_id: int, day: dt.date, th: Thresholds) -> _Facts | None:
    """The customer's bonus account, lifetime total, personal discounts valid on `day` and
    status on a purchase that day; None for no such customer. One statement on PostgreSQL."""
    if (
        connection.vendor != "postgresql"
        or not isinstance(customer_id, int)
        or not 0 < customer_id <= MAX_ID
    ):
        return _customer_facts_apart(customer_id, day)
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            _FACTS_SQL,
            {
                "customer": customer_id,
                "day": day,
                "since": months_window_start(day, th),
                "completed": Purchase.Status.COMPLETED,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    balance, pending, debt, total, first, months, ids, percents, untils, names = row
    if th.regular_enabled:
        status = status_from_months(first, months or (), day, th)
    else:  # the whole history replayed: its own read
        status = status_at_purchase(customer_id, day)
    return _Facts(
        balance=balance if balance is not None else ZERO,
        pending=pending if pending is not None else ZERO,
        debt=debt if debt is not None else ZERO,
        lifetime_total=(total or ZERO).quantize(KOPECK),
        personal=[PersonalOffer(*offer) for offer in zip(ids, percents, untils, names, strict=True)]
        if ids
        else [],
        status=status,
    )


def _customer_facts_apart(customer_id: int, day: dt.date) -> _Facts | None:
    """`_customer_facts` in several queries (SQLite)."""
    row = (
        Customer.objects.filter(pk=customer_id)
        .values_list("bonus_account__balance", "bonus_account__pending", "bonus_account__debt")
        .first()
    )
    if row is None:
        return None
    balance, pending, debt = (value if value is not None else ZERO for value in row)
    return _Facts(
        balance=balance,
        pending=pending,
        debt=debt,
        lifetime_total=lifetime_total(customer_id, day),
        personal=personal_offers(customer_id, day),
        status=status_at_purchase(customer_id, day),
    )


def _facts_sql() -> str:
    customer, account = Customer._meta.db_table, BonusAccount._meta.db_table
    purchase, offer = Purchase._meta.db_table, PersonalDiscount._meta.db_table
    offer_type = BonusDiscountType._meta.db_table
    # The same aggregates as discounts.lifetime_total, purchase_status._months and
    # discounts.personal_offers, side by side.
    return f"""
        SELECT a.balance, a.pending, a.debt, h.total, h.first, h.months,
               o.ids, o.percents, o.untils, o.names
        FROM {customer} c
        LEFT JOIN {account} a ON a.customer_id = c.id
        CROSS JOIN LATERAL (
            SELECT sum(p.total) AS total, min(p.purchase_date) AS first,
                   array_agg(DISTINCT (extract(year FROM p.purchase_date) * 12
                       + extract(month FROM p.purchase_date) - 1)::int)
                       FILTER (WHERE p.purchase_date >= %(since)s) AS months
            FROM {purchase} p
            WHERE p.customer_id = c.id AND p.status = %(completed)s
              AND p.purchase_date <= %(day)s
        ) h
        CROSS JOIN LATERAL (
            SELECT array_agg(d.id) AS ids, array_agg(d.percent) AS percents,
                   array_agg(d.valid_until) AS untils, array_agg(t.name) AS names
            FROM {offer} d JOIN {offer_type} t ON t.id = d.discount_type_id
            WHERE d.customer_id = c.id AND d.valid_from <= %(day)s
              AND (d.valid_until IS NULL OR d.valid_until >= %(day)s)
        ) o
        WHERE c.id = %(customer)s
    """


_FACTS_SQL = _facts_sql()
