"""Import of the chain's product catalogue from a CSV or XLSX file.

The catalogue is the source of truth for products: it creates the ones we do not have, updates the
ones it describes differently, and completes products created from till lines (`needs_review`).
"""

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from . import tabular
from .models import Product
from .tabular import FALSE_VALUES, TRUE_VALUES, cell_text

# One batch = one transaction: a SELECT, an INSERT of the new rows, an upsert of the changed ones.
BATCH_SIZE = 1000
# A batch that collides with a concurrent writer (a till line creating the same SKU) is retried.
BATCH_ATTEMPTS = 3

FIELDS = ("sku", "name", "inn", "pack_size", "prescription_only", "category")
REQUIRED_FIELDS = ("sku", "name")
UPDATED_FIELDS = tuple(name for name in FIELDS if name != "sku")
# Header aliases, compared after tabular.normalize_header (case, spaces, "_" and "-", ё).
HEADER_ALIASES = {
    "sku": ("sku", "артикул", "штрихкод", "штрих-код", "barcode", "ean", "ean13", "ean-13"),
    "name": ("name", "product name", "наименование", "наименование товара", "название"),
    "inn": ("inn", "мнн", "international non-proprietary name"),
    "pack_size": ("pack_size", "pack", "фасовка", "количество в упаковке"),
    "prescription_only": (
        "prescription_only",
        "prescription",
        "rx",
        "рецептурный",
        "по рецепту",
    ),
    "category": ("category", "категория", "группа"),
}

PACK_SIZE_MAX = 2_147_483_647  # PositiveIntegerField on every supported database

# Excel turns a long barcode typed as a number into "4,60123E+12": the digits are gone for good.
_EXCEL_SCIENTIFIC = re.compile(r"^\d[.,]\d+E\+\d+$", re.IGNORECASE)


_ALIAS_TO_FIELD = tabular.alias_index(HEADER_ALIASES)


@dataclass(frozen=True)
class RowMessage:
    """A problem with one row: its number in the file (the header is row 1), its SKU if any,
    and the file's own header of the column at fault, if one is."""

    row: int
    sku: str
    message: str
    column: str = ""


@dataclass
class ProductImportReport:
    """What an import did: counts of products by outcome and every row it rejected or warned of."""

    file_name: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowMessage] = field(default_factory=list)
    warnings: list[RowMessage] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)


@dataclass
class _Row:
    number: int
    values: dict[str, Any]  # only the fields the row supplies (non-blank cells)


def products_import(
    *, file: str | os.PathLike | BinaryIO, file_name: str = ""
) -> ProductImportReport:
    """Upsert products by SKU from a catalogue file (CSV or XLSX, told apart by `file_name`).

    Raises ValidationError when the file is refused whole (unsupported type, unreadable, no SKU or
    name column), and then stores nothing. Otherwise bad rows are reported and skipped, good rows
    stored in batches of BATCH_SIZE, each batch in its own transaction. A blank cell leaves the
    product's value as it is; a row naming a product created from a till line completes it.
    """
    if isinstance(file, str | os.PathLike):
        file_name = file_name or Path(file).name
        with open(file, "rb") as handle:
            return products_import(file=handle, file_name=file_name)

    tabular.file_extension(file_name)
    report = ProductImportReport(file_name=file_name)
    # The whole file is read and checked before the first write: a refused file stores nothing.
    with closing(tabular.read_rows(file, file_name, known=_ALIAS_TO_FIELD)) as rows:
        columns = _map_header(rows, file_name, report)
        parsed = _parse_rows(rows, columns, report)
    _store(parsed, report)
    return report


# --- Header ---------------------------------------------------------------------------------------


def _map_header(
    rows: Iterator[tuple[int, list[Any]]], file_name: str, report: ProductImportReport
) -> dict[int, tuple[str, str]]:
    """Column index -> (field, the file's own header) from the first non-blank row."""
    header = tabular.read_header(
        rows, file_name=file_name, known=_ALIAS_TO_FIELD, label=_field_label
    )
    report.unknown_columns.extend(header.unknown)
    missing = [name for name in REQUIRED_FIELDS if name not in header.fields]
    if missing:
        found = ", ".join(f"“{title}”" for title in header.titles) or "—"
        raise ValidationError(
            _(
                "“%(name)s” has no column for %(missing)s (columns found: %(found)s). "
                "Expected headers such as “sku” or “артикул” and “name” or “наименование”."
            ),
            code="missing_columns",
            params={
                "name": file_name,
                "missing": ", ".join(_field_label(name) for name in missing),
                "found": found,
            },
        )
    return header.columns


def _field_label(name: str) -> str:
    return str(Product._meta.get_field(name).verbose_name)


# --- Rows -----------------------------------------------------------------------------------------


class _RowError(Exception):
    def __init__(self, message: str, column: str) -> None:
        super().__init__(message)
        self.column = column


def _parse_rows(
    rows: Iterable[tuple[int, list[Any]]],
    columns: dict[int, tuple[str, str]],
    report: ProductImportReport,
) -> dict[str, _Row]:
    """Valid rows by SKU (a later row with the same SKU replaces an earlier one, with a warning)."""
    titles = dict(columns.values())
    by_sku: dict[str, _Row] = {}
    for number, cells in rows:
        raw = {
            name: cell_text(cells[index]) if index < len(cells) else ""
            for index, (name, _title) in columns.items()
        }
        if not any(raw.values()):
            continue  # blank lines, Excel's trailing formatted rows
        sku = raw.get("sku", "")
        try:
            values = _parse_values(raw, titles)
        except _RowError as exc:
            report.rejected.append(
                RowMessage(row=number, sku=sku, message=str(exc), column=exc.column)
            )
            continue
        earlier = by_sku.get(values["sku"])
        if earlier is not None:
            report.warnings.append(
                RowMessage(
                    row=number,
                    sku=values["sku"],
                    column=titles["sku"],
                    message=_("The SKU is also in row %(row)d; this later row is used.")
                    % {"row": earlier.number},
                )
            )
        by_sku[values["sku"]] = _Row(number=number, values=values)
    return by_sku


def _parse_values(raw: dict[str, str], titles: dict[str, str]) -> dict[str, Any]:
    def fail(name: str, message: str, **params: Any) -> _RowError:
        return _RowError(
            _("Column “%(column)s”: %(problem)s")
            % {"column": titles[name], "problem": message % params},
            column=titles[name],
        )

    values: dict[str, Any] = {}
    sku = raw["sku"]
    sku_length = Product._meta.get_field("sku").max_length
    if not sku:
        raise fail("sku", _("the SKU is empty."))
    if len(sku) > sku_length:
        raise fail("sku", _("the SKU is longer than %(max)d characters."), max=sku_length)
    if _EXCEL_SCIENTIFIC.match(sku):
        raise fail(
            "sku",
            _("“%(value)s” is a number Excel rewrote in scientific notation; the digits are lost."),
            value=sku,
        )
    values["sku"] = sku
    if not raw["name"]:
        raise fail("name", _("the name is empty."))

    for name in ("name", "inn", "category"):
        text = raw.get(name, "")
        if not text:
            continue
        limit = Product._meta.get_field(name).max_length
        if len(text) > limit:
            raise fail(name, _("the text is longer than %(max)d characters."), max=limit)
        values[name] = text

    pack = raw.get("pack_size", "")
    if pack:
        try:
            number = float(pack.replace(",", "."))
        except ValueError:
            number = 0.0
        if not (number.is_integer() and 0 < number <= PACK_SIZE_MAX):
            raise fail("pack_size", _("“%(value)s” is not a whole number above zero."), value=pack)
        values["pack_size"] = int(number)

    flag = raw.get("prescription_only", "").casefold()
    if flag:
        if flag in TRUE_VALUES:
            values["prescription_only"] = True
        elif flag in FALSE_VALUES:
            values["prescription_only"] = False
        else:
            raise fail(
                "prescription_only",
                _("“%(value)s” is not yes or no (use yes/no, да/нет, 1/0 or +/-)."),
                value=raw["prescription_only"],
            )
    return values


# --- Storing --------------------------------------------------------------------------------------


def _store(parsed: dict[str, _Row], report: ProductImportReport) -> None:
    skus = list(parsed)
    for start in range(0, len(skus), BATCH_SIZE):
        batch = {sku: parsed[sku] for sku in skus[start : start + BATCH_SIZE]}
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            try:
                created, updated, unchanged = _store_batch(batch)
            except IntegrityError:
                # Another writer created one of these SKUs after our SELECT: read again.
                if attempt == BATCH_ATTEMPTS:
                    raise
                continue
            break
        report.created += created
        report.updated += updated
        report.unchanged += unchanged


@transaction.atomic
def _store_batch(batch: dict[str, _Row]) -> tuple[int, int, int]:
    existing = {
        product.sku: product
        for product in Product.objects.select_for_update().filter(sku__in=list(batch))
    }
    new: list[Product] = []
    changed: list[Product] = []
    unchanged = 0
    for sku, row in batch.items():
        product = existing.get(sku)
        if product is None:
            new.append(Product(**row.values, needs_review=False))
            continue
        if not product.needs_review and all(
            getattr(product, name) == value for name, value in row.values.items()
        ):
            unchanged += 1
            continue
        # Blank cells keep the product's value: the row is written whole, merged.
        merged = {name: getattr(product, name) for name in FIELDS} | row.values
        changed.append(Product(**merged, needs_review=False))
    if new:
        Product.objects.bulk_create(new, batch_size=BATCH_SIZE)
    if changed:
        # INSERT ... ON CONFLICT (sku) DO UPDATE rather than bulk_update: the latter builds a
        # CASE WHEN per row and field in Python, ~10x slower for a whole catalogue of changes.
        # These rows exist and are locked above, so every one of them takes the UPDATE branch.
        Product.objects.bulk_create(
            changed,
            batch_size=BATCH_SIZE,
            update_conflicts=True,
            unique_fields=["sku"],
            update_fields=[*UPDATED_FIELDS, "needs_review", "updated_at"],
        )
    return len(new), len(changed), unchanged
