"""One <purchase> element -> PosPurchase, or PosRejection naming the first problem found.

Validation follows ../shared/formats/pos-xml.md: what can be checked without the database. The
type code against the reference list, and bonuses against the balance, are the import's checks.
"""

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from lxml import etree

from ..normalize import CARD_LENGTH, normalize_card, normalize_email, normalize_phone
from .records import PosCustomer, PosLine, PosPurchase, PosRejection
from .values import (
    CENT,
    MAX_EMAIL,
    MAX_ORDER_REF,
    MAX_PERSON_NAME,
    MAX_PRODUCT_NAME,
    MAX_PURCHASE_ID,
    MAX_SKU,
    MAX_TYPE_CODE,
    MONEY_LIMIT,
    parse_aware_datetime,
    parse_money,
    parse_quantity,
    show,
)

STATUSES = ("completed", "cancelled", "returned")
ZERO = Decimal("0.00")
# Per-file caches of whole lines and customers: a store sells the same packs at the same price
# all day, regular customers come back, and phonenumbers costs tens of microseconds a number.
# Bounded, so a file of all-distinct values still parses in flat memory.
LINE_CACHE_SIZE = 16_384
CUSTOMER_CACHE_SIZE = 32_768


class _Rejected(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason


def _missing(field: str) -> _Rejected:
    return _Rejected(field, _("Required, but missing or empty."))


def _too_long(field: str, value: str, limit: int) -> _Rejected:
    return _Rejected(
        field,
        _("Longer than %(limit)d characters: “%(value)s”.")
        % {"limit": limit, "value": show(value)},
    )


def _text(raw: str | None, field: str, limit: int, *, required: bool = True) -> str:
    value = (raw or "").strip()
    if not value and required:
        raise _missing(field)
    if len(value) > limit:
        raise _too_long(field, value, limit)
    return value


def _money(raw: str | None, field: str, default: Decimal | None = None) -> Decimal:
    if raw is None or not raw.strip():
        if default is None:
            raise _missing(field)
        return default
    try:
        return parse_money(raw)
    except ValueError as exc:
        raise _Rejected(field, str(exc)) from None


# Money as tills write it: 1 to 10 integer digits (MONEY_INTEGER_DIGITS), a dot and 2 decimals.
# Decimal() of such a text is what parse_money returns, without its checks.
_PLAIN_MONEY = re.compile(r"[0-9]{1,10}\.[0-9]{2}", re.ASCII)
ONE = Decimal("1.000")


@lru_cache(maxsize=1024)  # a file has few distinct quantities; errors are raised, not cached
def _quantity(text: str) -> Decimal:
    return parse_quantity(text)


def _line(sku: str | None, name: str | None, qty: str | None, price: str | None) -> PosLine:
    """A line from its raw attributes; fields in rejections are relative ("qty")."""
    sku = _text(sku, "sku", MAX_SKU)
    name = _text(name, "name", MAX_PRODUCT_NAME)
    if qty is None or not qty.strip():
        raise _missing("qty")
    try:
        quantity = _quantity(qty)
    except ValueError as exc:
        raise _Rejected("qty", str(exc)) from None
    if price is not None and _PLAIN_MONEY.fullmatch(price):
        unit_price = Decimal(price)
    else:
        unit_price = _money(price, "price")
    if quantity == ONE:  # a price has two decimals: one pack costs exactly its price
        amount = unit_price
    else:
        amount = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
    if amount >= MONEY_LIMIT:
        raise _Rejected("", _("qty × price = %(amount)s is too large.") % {"amount": amount})
    return PosLine(sku, name, quantity, unit_price, amount)


def _identifier(
    normalize: Callable[[str | None], str | None], raw: str | None, field: str
) -> str | None:
    try:
        return normalize(raw)
    except ValidationError as exc:
        raise _Rejected(field, exc.messages[0]) from None


def _customer(
    card: str | None,
    phone: str | None,
    email: str | None,
    last_name: str | None,
    first_name: str | None,
    birth_date: str | None,
) -> PosCustomer:
    """A customer from the raw attributes of <customer>; blank identifiers count as absent."""
    if card is None or len(card) != CARD_LENGTH or not card.isdigit():
        card = _identifier(normalize_card, card, "customer.card")
    # else: 13 digits, nothing to strip or drop: what normalize_card returns, without its loops
    phone = _identifier(normalize_phone, phone, "customer.phone")
    email = _identifier(normalize_email, email, "customer.email")
    if card is None and phone is None and email is None:
        raise _Rejected("customer", _("A customer needs a card, a phone or an email."))
    if email is not None and len(email) > MAX_EMAIL:
        raise _too_long("customer.email", email, MAX_EMAIL)
    last_name = _text(last_name, "customer.last_name", MAX_PERSON_NAME, required=False)
    first_name = _text(first_name, "customer.first_name", MAX_PERSON_NAME, required=False)
    born = None
    if birth_date is not None and birth_date.strip():
        try:
            born = date.fromisoformat(birth_date.strip())
        except ValueError:
            raise _Rejected(
                "customer.birth_date",
                _("“%(value)s” is not an ISO 8601 date, e.g. 1985-04-12.")
                % {"value": show(birth_date.strip())},
            ) from None
    return PosCustomer(card, phone, email, last_name, first_name, born)


def _single(seen: object, tag: str) -> None:
    if seen is not None:
        raise _Rejected(tag, _("Appears more than once."))


class PurchaseParser:
    """Parses the <purchase> elements of one file; keeps that file's caches, so make one a file."""

    def __init__(self) -> None:
        self._line = lru_cache(maxsize=LINE_CACHE_SIZE)(_line)
        self._customer = lru_cache(maxsize=CUSTOMER_CACHE_SIZE)(_customer)

    def _customer_of(self, element: etree._Element, purchased_at: datetime) -> PosCustomer:
        attribute = element.get
        customer = self._customer(
            attribute("card"),
            attribute("phone"),
            attribute("email"),
            attribute("last_name"),
            attribute("first_name"),
            attribute("birth_date"),
        )
        born = customer.birth_date
        # Checked here, not in the cached _customer, which does not know the purchase's date.
        if born is not None and (born > purchased_at.date() or born.year < 1900):
            raise _Rejected(
                "customer.birth_date",
                _("%(value)s is not a plausible birth date.") % {"value": born.isoformat()},
            )
        return customer

    def parse(self, element: etree._Element, position: int) -> PosPurchase | PosRejection:
        try:
            return self._purchase(element, position)
        except _Rejected as rejected:
            purchase_id = (element.get("id") or "").strip()[:MAX_PURCHASE_ID] or None
            return PosRejection(purchase_id, position, rejected.field, rejected.reason)

    def _purchase(self, element: etree._Element, position: int) -> PosPurchase:
        get = element.get
        purchase_id = _text(get("id"), "id", MAX_PURCHASE_ID)
        raw_datetime = get("datetime")
        if raw_datetime is None or not raw_datetime.strip():
            raise _missing("datetime")
        try:
            purchased_at = parse_aware_datetime(raw_datetime)
        except ValueError as exc:
            raise _Rejected("datetime", str(exc)) from None
        type_code = _text(get("type"), "type", MAX_TYPE_CODE)
        status = (get("status") or "").strip()
        if status not in STATUSES:
            if not status:
                raise _missing("status")
            raise _Rejected(
                "status",
                _("“%(value)s” is not one of completed, cancelled, returned.")
                % {"value": show(status)},
            )
        order_ref = _text(get("order_ref"), "order_ref", MAX_ORDER_REF, required=False)

        # One pass in document order, so the problem reported is the first one in the file.
        # Unknown elements are ignored: the format may grow.
        customer = discount = bonus_spent = total = None
        lines = []
        lines_sum = ZERO
        for child in element:
            tag = child.tag
            if tag == "line":
                attribute = child.get
                try:
                    line = self._line(
                        attribute("sku"), attribute("name"), attribute("qty"), attribute("price")
                    )
                except _Rejected as rejected:
                    field = f"line[{len(lines) + 1}]"
                    if rejected.field:
                        field = f"{field}.{rejected.field}"
                    raise _Rejected(field, rejected.reason) from None
                lines.append(line)
                lines_sum += line.amount
            elif tag == "total":
                _single(total, "total")
                total = _money(child.text, "total")
            elif tag == "customer":
                _single(customer, "customer")
                customer = self._customer_of(child, purchased_at)
            elif tag == "discount":
                _single(discount, "discount")
                discount = _money(child.text, "discount", ZERO)
            elif tag == "bonus":
                _single(bonus_spent, "bonus")
                bonus_spent = _money(child.get("spent"), "bonus.spent", ZERO)
        if not lines:
            raise _Rejected("line", _("A purchase needs at least one line."))
        if total is None:
            raise _missing("total")
        if discount is None:
            discount = ZERO
        if bonus_spent is None:
            bonus_spent = ZERO

        if lines_sum - discount != total:
            raise _Rejected(
                "total",
                _(
                    "Total %(total)s does not match the lines %(lines)s − discount %(discount)s"
                    " = %(expected)s."
                )
                % {
                    "total": total,
                    "lines": lines_sum,
                    "discount": discount,
                    "expected": lines_sum - discount,
                },
            )
        if bonus_spent > total:
            raise _Rejected(
                "bonus.spent",
                _("Bonuses spent %(bonus)s exceed the total %(total)s.")
                % {"bonus": bonus_spent, "total": total},
            )
        if bonus_spent and customer is None:
            # Bonuses come off a customer's balance: an anonymous purchase has none to spend.
            raise _Rejected("bonus.spent", _("Bonuses spent on a purchase without a customer."))
        return PosPurchase(
            purchase_id,
            purchased_at,
            type_code,
            status,
            order_ref,
            customer,
            tuple(lines),
            discount,
            bonus_spent,
            total,
            position,
        )
