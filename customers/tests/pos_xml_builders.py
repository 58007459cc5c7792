"""Build POS export files (../shared/formats/pos-xml.md) for tests and benchmarks.

`write_pos_file` streams with `lxml.etree.xmlfile`, one purchase element at a time, so a file of a
million purchases is written in flat memory.
"""

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from io import BytesIO
from os import PathLike
from typing import Any, BinaryIO

from lxml import etree

DEFAULT_GENERATED = "2026-11-20T23:00:00+03:00"
CENT = Decimal("0.01")


def _text(value: Any) -> str:
    """A value as the till would write it: dates in ISO 8601, everything else via str()."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _attributes(element: etree._Element, values: Mapping[str, Any]) -> None:
    # None means "leave the attribute out", so tests can build purchases with missing fields.
    for name, value in values.items():
        if value is not None:
            element.set(name, _text(value))


def expected_total(purchase: Mapping[str, Any]) -> Decimal:
    """sum(qty × price rounded half-up to kopecks) − discount, as the spec defines `total`."""
    lines = sum(
        (
            (Decimal(str(line["qty"])) * Decimal(str(line["price"]))).quantize(
                CENT, rounding=ROUND_HALF_UP
            )
            for line in purchase.get("lines", ())
        ),
        Decimal("0.00"),
    )
    return lines - Decimal(str(purchase.get("discount") or 0))


def purchase_element(purchase: Mapping[str, Any]) -> etree._Element:
    """One <purchase> element from a dict.

    Keys: id, datetime, type (default "retail"), status (default "completed"), order_ref, customer
    (a dict of its attributes, or None), lines (dicts with sku, name, qty, price), discount,
    bonus_spent, total (default: computed from the lines and discount), extra (raw XML strings of
    further child elements). A key present with value None leaves that attribute or element out.
    """
    element = etree.Element("purchase")
    _attributes(
        element,
        {
            "id": purchase.get("id"),
            "datetime": purchase.get("datetime"),
            "type": purchase.get("type", "retail"),
            "status": purchase.get("status", "completed"),
            "order_ref": purchase.get("order_ref"),
        },
    )
    if purchase.get("customer") is not None:
        _attributes(etree.SubElement(element, "customer"), purchase["customer"])
    for line in purchase.get("lines", ()):
        _attributes(etree.SubElement(element, "line"), line)
    if purchase.get("discount") is not None:
        etree.SubElement(element, "discount").text = _text(purchase["discount"])
    if purchase.get("bonus_spent") is not None:
        etree.SubElement(element, "bonus").set("spent", _text(purchase["bonus_spent"]))
    total = purchase["total"] if "total" in purchase else expected_total(purchase)
    if total is not None:
        etree.SubElement(element, "total").text = _text(total)
    for raw in purchase.get("extra", ()):
        element.append(etree.fromstring(raw))
    return element


def write_pos_file(
    target: str | PathLike[str] | BinaryIO,
    store_code: str,
    purchases: Iterable[Mapping[str, Any]],
    *,
    generated: datetime | str = DEFAULT_GENERATED,
    version: str = "1",
) -> int:
    """Write a POS export to a path or binary file object; returns the number of purchases written.

    Purchases are consumed lazily and written one by one, so a generator of any length can be
    written without memory growth.
    """
    count = 0
    with etree.xmlfile(target, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element("export", store=store_code, generated=_text(generated), version=version):
            xf.write("\n")
            for purchase in purchases:
                xf.write(purchase_element(purchase), pretty_print=True)
                count += 1
    return count


def pos_xml_bytes(store_code: str, purchases: Iterable[Mapping[str, Any]], **kwargs: Any) -> bytes:
    """The bytes `write_pos_file` would write, for small in-memory test files."""
    buffer = BytesIO()
    write_pos_file(buffer, store_code, purchases, **kwargs)
    return buffer.getvalue()
