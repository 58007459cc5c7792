"""Parsing the values of a POS export: money, quantities, date-times; and the limits they obey.

Each parser returns the value or raises ValueError whose message is the translated reason, ready
for a rejection report.
"""

import re
from datetime import datetime
from decimal import Decimal

from django.utils.translation import gettext as _

# Widths of the columns the values are stored into (customers.models): a longer value is a
# rejected purchase here, not a failed INSERT that would abort the whole import. A test keeps
# them in step with the models.
MAX_STORE_CODE = 50  # Store.code
MAX_PURCHASE_ID = 64  # Purchase.external_id
MAX_TYPE_CODE = 50  # PurchaseType.code
MAX_ORDER_REF = 64  # Purchase.order_ref
MAX_SKU = 64  # Product.sku
MAX_PRODUCT_NAME = 255  # Product.name
MAX_PERSON_NAME = 100  # Customer.last_name, Customer.first_name
MAX_EMAIL = 254  # Customer.email
MONEY_INTEGER_DIGITS = 10  # MONEY: 12 digits, 2 of them decimals
QTY_INTEGER_DIGITS = 7  # PurchaseLine.qty: 10 digits, 3 of them decimals
MONEY_LIMIT = Decimal(10) ** MONEY_INTEGER_DIGITS

CENT = Decimal("0.01")
MILLI = Decimal("0.001")
# ASCII digits only: Decimal() would also take "١٢٣" or full-width digits.
_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)


def show(value: str, limit: int = 40) -> str:
    """A value from the file, shortened for a message: a hostile 10 MB attribute is not echoed."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def parse_money(text: str) -> Decimal:
    """Money as the spec writes it: "289", "289.5" or "289.00" -> Decimal("289.00").

    Surrounding whitespace is ignored. Refused: a comma, an exponent, NaN or Infinity, a sign,
    more than two decimal places, and amounts too large for a MONEY column.
    """
    value = text.strip()
    match = _NUMBER.fullmatch(value)
    if match is None:
        raise ValueError(
            _("“%(value)s” is not an amount of money: digits with a dot, e.g. 289.00.")
            % {"value": show(value)}
        )
    sign, whole, decimals = match.groups()
    if sign:
        raise ValueError(_("“%(value)s” is negative.") % {"value": show(value)})
    if decimals is not None and len(decimals) > 2:
        raise ValueError(
            _("“%(value)s” has more than two decimal places.") % {"value": show(value)}
        )
    # Checked on the digits, before Decimal sees them: quantize() of a huge number would raise.
    if len(whole.lstrip("0")) > MONEY_INTEGER_DIGITS:
        raise ValueError(_("“%(value)s” is too large.") % {"value": show(value)})
    return Decimal(value).quantize(CENT)


def parse_quantity(text: str) -> Decimal:
    """A line quantity: "1", "0.5", "2.125" -> Decimal quantized to 0.001; must be > 0.

    Packs can be split, so decimals are allowed, up to three places (the column's scale).
    """
    value = text.strip()
    match = _NUMBER.fullmatch(value)
    if match is None:
        raise ValueError(
            _("“%(value)s” is not a quantity: a number with a dot, e.g. 2 or 0.5.")
            % {"value": show(value)}
        )
    sign, whole, decimals = match.groups()
    if decimals is not None and len(decimals) > 3:
        raise ValueError(
            _("“%(value)s” has more than three decimal places.") % {"value": show(value)}
        )
    if len(whole.lstrip("0")) > QTY_INTEGER_DIGITS:
        raise ValueError(_("“%(value)s” is too large.") % {"value": show(value)})
    qty = Decimal(value).quantize(MILLI)
    if sign or not qty:
        raise ValueError(
            _("Quantity “%(value)s” must be greater than zero.") % {"value": show(value)}
        )
    return qty


def parse_aware_datetime(text: str) -> datetime:
    """ISO 8601 date and time with a UTC offset, e.g. "2026-11-20T14:03:11+03:00" or "...Z".

    A time without an offset is refused: a till's local time alone is ambiguous. A space instead
    of the "T" is accepted (RFC 3339 allows it).
    """
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    # fromisoformat also takes a bare date, and any character at all between date and time.
    if parsed is None or ("T" not in value and " " not in value):
        raise ValueError(
            _("“%(value)s” is not an ISO 8601 date and time, e.g. 2026-11-20T14:03:11+03:00.")
            % {"value": show(value)}
        )
    if parsed.utcoffset() is None:
        raise ValueError(
            _("“%(value)s” has no UTC offset (such as +03:00).") % {"value": show(value)}
        )
    return parsed
