"""Reading the pharmacies' POS purchase export (XML), as specified in ../shared/formats/pos-xml.md.

Pure parsing: bytes in, frozen dataclasses out, no ORM access. The import service builds on:

- `scan_pos_file(source) -> PosFileScan`: one streaming pass proving the whole file is well-formed
  and of this format (or raising `PosFileError`), with its header, SHA-256, size and purchase count.
  Run it first, so a file broken at its end is refused before anything is stored.
- `iter_pos_purchases(source)`: exactly one `PosPurchase` or `PosRejection` per <purchase>
  element, in document order, streamed in flat memory.
- `read_pos_header(source) -> PosHeader`: the <export> attributes alone.

`source` is a path or a binary file object. The file comes from outside: any DTD, entity
declaration or reference, external resource or network access is refused (XXE, billion laughs).
"""

from .records import (
    PosCustomer,
    PosFileError,
    PosFileScan,
    PosHeader,
    PosLine,
    PosPurchase,
    PosRejection,
)
from .stream import PosSource, iter_pos_purchases, read_pos_header, scan_pos_file
from .values import parse_aware_datetime, parse_money, parse_quantity

__all__ = [
    "PosCustomer",
    "PosFileError",
    "PosFileScan",
    "PosHeader",
    "PosLine",
    "PosPurchase",
    "PosRejection",
    "PosSource",
    "iter_pos_purchases",
    "parse_aware_datetime",
    "parse_money",
    "parse_quantity",
    "read_pos_header",
    "scan_pos_file",
]
