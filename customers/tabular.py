"""Reading the tabular files our imports receive: one reader for the product catalogue, the
customer bases of the app and the website, and whatever comes next.

- The file type comes from the file name: ``.csv`` or ``.xlsx``; anything else is refused.
- CSV is UTF-8 with or without a BOM ("CSV UTF-8" from Excel), read as a stream; the delimiter
  (``,`` ``;`` or tab) is the one that splits the header into the most known columns.
- XLSX: the first sheet, read-only (rows streamed, formulas as their cached values).
- Headers are compared after `normalize_header` (case, spaces, ``_`` and ``-``, ё), through an
  index of aliases built with `alias_index`.

Every problem that refuses a file is a ValidationError with a message for the person who sent it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

SUPPORTED_EXTENSIONS = (".csv", ".xlsx")
CSV_DELIMITERS = (",", ";", "\t")
TRUE_VALUES = frozenset({"yes", "true", "1", "да", "+"})
FALSE_VALUES = frozenset({"no", "false", "0", "нет", "-"})

# (row number as a spreadsheet shows it, the row's cells); the header is row 1.
Rows = Iterator[tuple[int, list[Any]]]


def normalize_header(text: str) -> str:
    """A column title as compared: " Номер_карты " and "номер-карты" are both "номер карты"."""
    text = text.replace("\ufeff", "").casefold().replace("ё", "е")
    return " ".join(re.sub(r"[_\-]", " ", text).split())


def alias_index(aliases: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """{field: (alias, ...)} -> {normalised alias: field}."""
    return {normalize_header(alias): name for name, names in aliases.items() for alias in names}


def cell_text(value: Any) -> str:
    """A cell as trimmed text; Excel's whole-number floats (20.0, 4601234567890.0) as integers."""
    if value.__class__ is str:  # every CSV cell: the fast path
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def file_extension(file_name: str) -> str:
    """ ".csv" or ".xlsx" (lower case), or ValidationError for any other file type."""
    extension = Path(file_name).suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        raise ValidationError(
            _("“%(name)s”: unsupported file type; upload a .csv or .xlsx file."),
            code="unsupported_type",
            params={"name": file_name},
        )
    return extension


def read_rows(file: BinaryIO, file_name: str, *, known: Mapping[str, Any]) -> Rows:
    """Every row of a CSV or XLSX file (told apart by `file_name`), blank ones included.

    `known` (normalised header -> anything) only helps to choose a CSV file's delimiter.
    The caller's file is left open. Raises ValidationError when the file cannot be read,
    possibly part-way through: callers that must not write half a file read it whole first.
    """
    if file_extension(file_name) == ".xlsx":
        return read_xlsx(file, file_name)
    return read_csv(file, file_name, known=known)


def read_csv(file: BinaryIO, file_name: str, *, known: Mapping[str, Any]) -> Rows:
    text = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
    try:
        consumed: list[str] = []
        header_line = ""
        for line in text:
            consumed.append(line)
            if line.strip():
                header_line = line
                break
        delimiter = sniff_delimiter(header_line, known)
        reader = csv.reader(chain(consumed, text), delimiter=delimiter)
        # The row number is the record's number, as a spreadsheet opening the file shows it.
        yield from enumerate(reader, start=1)
    except UnicodeDecodeError:
        raise ValidationError(
            _("“%(name)s” is not UTF-8 text; save it from Excel as “CSV UTF-8”."),
            code="not_utf8",
            params={"name": file_name},
        ) from None
    except csv.Error as exc:
        raise ValidationError(
            _("“%(name)s” is not a readable CSV file: %(error)s"),
            code="unreadable",
            params={"name": file_name, "error": exc},
        ) from None
    finally:
        if not text.closed:
            text.detach()  # the file is the caller's: dropping the wrapper must not close it


def sniff_delimiter(header_line: str, known: Mapping[str, Any]) -> str:
    """The delimiter that splits the header into the most known columns (then the most columns)."""

    def score(delimiter: str) -> tuple[int, int]:
        cells = next(csv.reader([header_line], delimiter=delimiter), [])
        return sum(normalize_header(cell) in known for cell in cells), len(cells)

    return max(CSV_DELIMITERS, key=score)


def read_xlsx(file: BinaryIO, file_name: str) -> Rows:
    try:
        workbook = load_workbook(file, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError):
        raise ValidationError(
            _("“%(name)s” is not a readable Excel (.xlsx) file."),
            code="unreadable",
            params={"name": file_name},
        ) from None
    try:
        sheet = workbook.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(row)
    finally:
        workbook.close()


@dataclass
class Header:
    """The header row: which column gives which field, and what the file calls it."""

    number: int
    columns: dict[int, tuple[str, str]]  # column index -> (field, the file's own title)
    unknown: list[str] = field(default_factory=list)  # titles no alias names, in file order
    titles: list[str] = field(default_factory=list)  # every non-blank title, in file order

    @property
    def fields(self) -> dict[str, str]:
        """{field: the file's title of its column}."""
        return dict(self.columns.values())


def read_header(
    rows: Rows,
    *,
    file_name: str,
    known: Mapping[str, str | None],
    label: Callable[[str], str],
) -> Header:
    """Map the first non-blank row's titles to fields through `known` (normalised title -> field;
    a title known as None is ignored silently). The rows after it stay in `rows`.

    Raises ValidationError for a file without a header row, or when two columns give one field
    (named with `label(field)`).
    """
    found = next(((n, cells) for n, cells in rows if any(cell_text(c) for c in cells)), None)
    if found is None:
        raise ValidationError(
            _("“%(name)s” is empty: no header row found."),
            code="empty",
            params={"name": file_name},
        )
    number, cells = found
    header = Header(number=number, columns={})
    seen: dict[str, str] = {}
    for index, cell in enumerate(cells):
        title = cell_text(cell)
        if not title:
            continue
        header.titles.append(title)
        key = normalize_header(title)
        if key not in known:
            header.unknown.append(title)
            continue
        name = known[key]
        if name is None:
            continue
        if name in seen:
            raise ValidationError(
                _("“%(name)s”: columns “%(first)s” and “%(second)s” both give the %(field)s."),
                code="duplicate_column",
                params={
                    "name": file_name,
                    "first": seen[name],
                    "second": title,
                    "field": label(name),
                },
            )
        seen[name] = title
        header.columns[index] = (name, title)
    return header


def row_values(cells: list[Any], columns: Mapping[int, tuple[str, str]]) -> dict[str, Any]:
    """{field: the raw cell} for the mapped columns (a short row's missing cells are None)."""
    return {
        name: cells[index] if index < len(cells) else None
        for index, (name, _title) in columns.items()
    }


# --- Cells as values (each raises ValueError naming the problem) ---------------------------------

_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def cell_bool(value: Any) -> bool | None:
    """yes/no, да/нет, true/false, 1/0, +/- (and Excel booleans); None for a blank cell."""
    text = cell_text(value).casefold()
    if not text:
        return None
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    raise ValueError(_("“%(value)s” is not yes or no (use yes/no, да/нет, 1/0).") % {"value": text})


def cell_datetime(value: Any, tz: dt.tzinfo | None = None) -> dt.datetime | None:
    """An aware datetime from an Excel date cell, ISO text ("2024-03-01", "2024-03-01T10:00",
    with or without an offset) or "01.03.2024[ 10:00[:00]]"; in `tz` (default: the current time
    zone) when no offset is given, midnight when no time is. None for a blank cell."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    else:
        text = cell_text(value)
        if not text:
            return None
        moment = _parse_datetime_text(text)
    if moment.tzinfo is None:
        moment = timezone.make_aware(moment, tz)
    return moment


def cell_date(value: Any) -> dt.date | None:
    """A date from an Excel date cell, "1980-05-17" or "17.05.1980"; None for a blank cell."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = cell_text(value)
    if not text:
        return None
    return _parse_datetime_text(text).date()


@lru_cache(maxsize=8192)  # files repeat their dates (registration days, birthdays)
def _parse_datetime_text(text: str) -> dt.datetime:
    match = _DOTTED.match(text)
    try:
        if match:
            day, month, year, hour, minute, second = match.groups()
            return dt.datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
        if text[:4].isdigit() and text[4:5] == "-":
            return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(
        _("“%(value)s” is not a date (use 2024-03-01 or 01.03.2024).") % {"value": text}
    )
