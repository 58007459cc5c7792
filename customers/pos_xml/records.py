"""What parsing a POS export produces: frozen values, and the one error that refuses a file."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class PosHeader:
    store_code: str
    generated: datetime  # aware
    version: str


@dataclass(frozen=True, slots=True)
class PosFileScan:
    header: PosHeader
    sha256: str  # hex digest of the file's bytes
    purchases: int  # <purchase> elements, parsed or not
    size: int  # bytes


@dataclass(frozen=True, slots=True)
class PosCustomer:
    card: str | None  # 13 digits
    phone: str | None  # E.164
    email: str | None  # trimmed, lower-case
    last_name: str  # stripped, "" if absent
    first_name: str
    birth_date: date | None


@dataclass(frozen=True, slots=True)
class PosLine:
    """One line; equal lines of a file may be one shared (immutable) object."""

    sku: str
    name: str
    qty: Decimal  # > 0, quantized to 0.001 (the column's scale)
    price: Decimal  # >= 0, quantized to 0.01
    amount: Decimal  # qty × price rounded half-up to 0.01


@dataclass(frozen=True, slots=True)
class PosPurchase:
    purchase_id: str
    purchased_at: datetime  # aware, in the offset the file gave
    type_code: str  # non-empty; not checked against the reference list here
    status: str  # completed, cancelled or returned
    order_ref: str  # "" if absent
    customer: PosCustomer | None  # None: an anonymous purchase
    lines: tuple[PosLine, ...]  # at least one
    discount: Decimal
    bonus_spent: Decimal  # <= total
    total: Decimal  # == sum(line amounts) − discount, exactly
    position: int  # 1-based index of the <purchase> element in the file


@dataclass(frozen=True, slots=True)
class PosRejection:
    """A purchase that was not parsed, with the first problem found in it."""

    purchase_id: str | None  # None when the id itself is missing
    position: int  # 1-based index of the <purchase> element in the file
    field: str  # "id", "datetime", "customer.phone", "line[2].qty", "total", "bonus.spent", ...
    reason: str  # English source text, translated with gettext when the rejection was made


class PosFileError(Exception):
    """The whole file is refused; the message (translated) says why, for the import report."""
