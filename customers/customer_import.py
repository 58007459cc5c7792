"""Import of a customer base — the mobile app's, the website's — from a CSV or XLSX export.

Each row is one person as the source system knows them. The file is first checked whole (readable,
a header with an identifier column, a valid mapping; a CSV file is read through once): a refused
file writes nothing but its ImportRun. It is then read as a stream in batches, each one transaction
under the identity lock, like the POS import: the rows are resolved to customers set-based with the
import's source (app and site data outrank the till's, `customers.identity`), the source system's
ids attached, and the consents the file states appended in bulk. A bad row is reported (row number,
column, reason) and creates nothing. Importing the same file again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from . import tabular
from .identity import IdentityRecord, Outcome, personal_data_errors
from .identity_batch import BatchResolver, copy_rows, identity_lock
from .models import (
    Channel,
    Consent,
    Customer,
    ExternalId,
    ImportIssue,
    ImportRun,
    MergeRecord,
    Sex,
    Source,
)
from .normalize import normalize_card, normalize_email, normalize_phone
from .tabular import cell_bool, cell_date, cell_datetime, cell_text

# --- The file's columns -------------------------------------------------------------------------

IDENTIFIERS = ("phone", "email", "card", "external_id")
NAME_PARTS = ("last_name", "first_name", "middle_name")
ADDRESS_PARTS = ("street", "house", "flat")
TEXT_FIELDS = (*NAME_PARTS, "city", *ADDRESS_PARTS)
_CONSENT_WORDS = {
    Channel.SMS: ("sms", "смс"),
    Channel.EMAIL: ("email", "e-mail", "почта", "email рассылка"),
    Channel.VIBER: ("viber", "вайбер"),
    Channel.VK: ("vk", "вк", "вконтакте"),
    Channel.CALLS: ("calls", "звонки"),
    Channel.PERSONAL_DATA: ("personal data", "персональные данные", "обработка пдн", "пдн"),
}
# Field name -> header aliases, compared after tabular.normalize_header (case, spaces, _ -, ё).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "phone": ("phone", "телефон", "mobile", "mobile phone", "phone number", "мобильный телефон"),
    "email": ("email", "e-mail", "mail", "почта", "электронная почта", "эл. почта"),
    "card": ("card", "card_number", "loyalty card", "карта", "номер карты", "карта лояльности"),
    "external_id": ("id", "external_id", "user_id", "client_id", "customer_id", "ид", "id клиента"),
    "last_name": ("last_name", "surname", "фамилия"),
    "first_name": ("first_name", "given name", "имя"),
    "middle_name": ("middle_name", "patronymic", "отчество"),
    "full_name": ("fio", "фио", "ф.и.о.", "full_name", "полное имя"),
    "birth_date": ("birth_date", "birthday", "date of birth", "dob", "дата рождения"),
    "sex": ("sex", "gender", "пол"),
    "city": ("city", "город", "населенный пункт"),
    "street": ("street", "улица"),
    "house": ("house", "дом"),
    "flat": ("flat", "apartment", "квартира", "кв"),
    "address": ("address", "адрес"),
    "household_size": ("household_size", "household", "family size", "размер семьи"),
    "registered_at": (
        "registered_at",
        "registered",
        "registration_date",
        "created_at",
        "created",
        "дата регистрации",
    ),
    **{
        f"consent_{channel}": (
            f"consent_{channel}",
            *(f"consent {w}" for w in words),
            *(f"согласие {w}" for w in words),
            *(f"согласие на {w}" for w in words),
        )
        for channel, words in _CONSENT_WORDS.items()
    },
    **{
        f"consent_{channel}_date": (
            f"consent_{channel}_date",
            *(f"consent {w} date" for w in words),
            *(f"дата согласия {w}" for w in words),
            *(f"дата согласия на {w}" for w in words),
        )
        for channel, words in _CONSENT_WORDS.items()
    },
}
FIELDS = tuple(HEADER_ALIASES)
_SEX = {
    **dict.fromkeys(("m", "male", "man", "м", "муж", "муж.", "мужской"), Sex.MALE),
    **dict.fromkeys(("f", "female", "woman", "ж", "жен", "жен.", "женский"), Sex.FEMALE),
}
_EXTERNAL_ID_LENGTH = ExternalId._meta.get_field("external_id").max_length
_HOUSEHOLD_MAX = 32767  # PositiveSmallIntegerField
_OLDEST_BIRTH = dt.date(1900, 1, 1)


@dataclass
class Person:
    """A good row: who it describes and the consents it states (channel, granted, when, column)."""

    number: int
    record_id: str
    record: IdentityRecord
    consents: list[tuple[str, bool, dt.datetime, str]]


class RowRejected(Exception):
    def __init__(self, problems: list[tuple[str, str]], record_id: str) -> None:
        super().__init__(problems)
        self.problems = problems  # (the file's column title, reason)
        self.record_id = record_id


def split_full_name(text: str) -> dict[str, str]:
    """ "Иванова Анна Сергеевна" -> last, first, middle ("… оглы" stays in the middle name);
    two words are last and first name; a single word is taken as the first name."""
    words = text.split()
    if len(words) == 1:
        return {"first_name": words[0]}
    parts = dict(zip(NAME_PARTS[:2], words, strict=False))
    if len(words) > 2:
        parts["middle_name"] = " ".join(words[2:])
    return parts


class RowLayout:
    """How the rows of one file are read: its columns, and where the name and address come from.

    Name parts come from their own columns; a full-name column fills the parts whose columns the
    file lacks. A single address column is the street when the file has no street, house or flat.
    """

    def __init__(self, header: tabular.Header, *, source: str, at: dt.datetime) -> None:
        self.columns = [(index, name) for index, (name, _title) in header.columns.items()]
        self.titles = header.fields
        self.system = source  # ExternalId.System has the same values as the import sources
        self.source = source
        self.at = at
        self.tz = timezone.get_current_timezone()
        fields = set(self.titles)
        self.from_full_name = [p for p in NAME_PARTS if p not in fields and "full_name" in fields]
        self.address_is_street = "address" in fields and not fields & set(ADDRESS_PARTS)
        self.channels = [c for c in Channel.values if f"consent_{c}" in fields]
        # A value's field -> the file's field it was read from (for reporting the column).
        self.origin = dict.fromkeys(self.from_full_name, "full_name")
        if self.address_is_street:
            self.origin["street"] = "address"

    def unused_columns(self) -> list[tuple[str, str]]:
        unused = []
        if "full_name" in self.titles and not self.from_full_name:
            unused.append(self.titles["full_name"])
        if "address" in self.titles and not self.address_is_street:
            unused.append(self.titles["address"])
        message = _("Column “%(column)s” is not used: the file has separate columns for it.")
        return [(title, message % {"column": title}) for title in unused]

    def parse(self, number: int, cells: list[Any]) -> Person:
        """The row as a Person, or RowRejected naming every problem by column."""
        n = len(cells)
        raw = {name: cells[i] if i < n else None for i, name in self.columns}
        text = {name: cell_text(value) for name, value in raw.items()}
        errors: dict[str, str] = {}
        ids: dict[str, str | None] = {}
        for name, normalize in (
            ("phone", normalize_phone),
            ("email", normalize_email),
            ("card", normalize_card),
        ):
            try:
                ids[name] = normalize(text.get(name))
            except ValidationError as exc:
                errors[name] = exc.messages[0]
        external = text.get("external_id", "")
        if len(external) > _EXTERNAL_ID_LENGTH:
            errors["external_id"] = _("at most %(max)d characters") % {"max": _EXTERNAL_ID_LENGTH}

        data: dict[str, Any] = {name: text[name] for name in TEXT_FIELDS if text.get(name)}
        if self.from_full_name and text["full_name"]:
            parts = split_full_name(text["full_name"])
            data.update({p: parts[p] for p in self.from_full_name if p in parts})
        if self.address_is_street and text["address"]:
            data["street"] = text["address"]
        self._values(raw, text, data, errors)
        for name, message in personal_data_errors(data).items():
            errors.setdefault(self.origin.get(name, name), message)
        registered = self._when("registered_at", raw, errors) if "registered_at" in raw else None
        consents = self._consents(raw, registered, errors)
        if not errors and not (any(ids.values()) or external):
            errors[""] = _("No phone, email, card number or id: nothing to find the customer by.")
        if errors:
            problems = [(self.titles.get(name, ""), message) for name, message in errors.items()]
            raise RowRejected(problems, external)
        record = IdentityRecord(
            source=self.source,
            external_ids=((self.system, external),) if external else (),
            data=data,
            at=self.at,
            **ids,
        )
        return Person(number=number, record_id=external, record=record, consents=consents)

    def _values(self, raw, text, data: dict[str, Any], errors: dict[str, str]) -> None:
        """Birth date, sex and household size into `data`; problems into `errors`."""
        try:
            born = cell_date(raw.get("birth_date"))
        except ValueError as exc:
            errors["birth_date"] = str(exc)
        else:
            if born is not None and not _OLDEST_BIRTH <= born <= self.at.astimezone(self.tz).date():
                errors["birth_date"] = _("“%(value)s” is not a plausible birth date.") % {
                    "value": text["birth_date"]
                }
            elif born is not None:
                data["birth_date"] = born
        if text.get("sex"):
            sex = _SEX.get(text["sex"].casefold())
            if sex is None:
                errors["sex"] = _("“%(value)s” is not a sex (use м/ж, M/F or male/female).") % {
                    "value": text["sex"]
                }
            else:
                data["sex"] = sex
        if text.get("household_size"):
            try:
                size = float(text["household_size"].replace(",", "."))
            except ValueError:
                size = 0.0
            if not (size.is_integer() and 1 <= size <= _HOUSEHOLD_MAX):
                errors["household_size"] = _("“%(value)s” is not a whole number above zero.") % {
                    "value": text["household_size"]
                }
            else:
                data["household_size"] = int(size)

    def _when(self, name: str, raw, errors: dict[str, str]) -> dt.datetime | None:
        try:
            moment = cell_datetime(raw.get(name), self.tz)
        except ValueError as exc:
            errors[name] = str(exc)
            return None
        if moment is not None and moment > self.at:
            errors[name] = _("%(when)s is in the future.") % {"when": moment.isoformat()}
            return None
        return moment

    def _consents(self, raw, registered: dt.datetime | None, errors: dict[str, str]) -> list:
        """(channel, granted, when, column) per consent the row states: when is the consent's
        own date, else the registration date, else the import time."""
        consents = []
        for channel in self.channels:
            name = f"consent_{channel}"
            try:
                granted = cell_bool(raw[name])
            except ValueError as exc:
                errors[name] = str(exc)
                continue
            if granted is None:
                continue  # the file says nothing about this channel
            when = self._when(f"{name}_date", raw, errors) if f"{name}_date" in raw else None
            consents.append((channel, granted, when or registered or self.at, self.titles[name]))
        return consents


# --- The import -------------------------------------------------------------------------------

BATCH_SIZE = 5000
_CONSENT_COLUMNS = (
    "customer_id",
    "channel",
    "granted",
    "occurred_at",
    "source",
    "recorded_at",
    "recorded_by_id",
    "note",
)
_DEFAULT_KNOWN = tabular.alias_index(HEADER_ALIASES)
_COUNTS = ImportRun.COUNT_FIELDS


def customers_import(
    *,
    file: str | os.PathLike | BinaryIO,
    file_name: str = "",
    source: str,
    mapping: Mapping[str, str | None] | None = None,
    user: AbstractBaseUser | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportRun:
    """Import a customer-base export (.csv or .xlsx, by `file_name`) from `source` (app, site,
    pos or contact_centre); returns its ImportRun, done or failed (refused).

    `mapping` ({file column title: field name, or None to ignore the column}) overrides the
    default header aliases; a name that is not a field refuses the file. Counts per row:
    `created` — the row created its customer; `updated` — it named an existing customer (or one
    an earlier row created) and the batch changed that customer (a field, an external id, a
    consent, a merge); `unchanged` — it changed nothing. `customers_*` count what identity
    resolution did. A `file` object must be seekable (it is read twice).
    """
    if isinstance(file, str | os.PathLike):
        with open(file, "rb") as handle:
            return customers_import(
                file=handle,
                file_name=file_name or Path(file).name,
                source=source,
                mapping=mapping,
                user=user,
                batch_size=batch_size,
            )
    if source not in (Source.APP, Source.SITE, Source.POS, Source.CONTACT_CENTRE):
        raise ValueError(f"not a customer-base source: {source!r}")
    run = ImportRun.objects.create(
        kind=ImportRun.Kind.CUSTOMERS, file_name=file_name, source=source, started_by=user
    )
    rows = None
    try:
        known = _known_titles(mapping)
        run.checksum = _check_file(file, file_name, known)
        rows = tabular.read_rows(file, file_name, known=known)
        header = tabular.read_header(rows, file_name=file_name, known=known, label=_label)
        _check_header(header, file_name)
        layout = RowLayout(header, source=source, at=run.started_at)
        importer = _Importer(run=run, layout=layout, user=user)
        for title in header.unknown:
            importer.issue(
                ImportIssue.Level.WARNING,
                header.number,
                title,
                _("Unknown column “%(column)s”: ignored.") % {"column": title},
            )
        for title, message in importer.layout.unused_columns():
            importer.issue(ImportIssue.Level.WARNING, header.number, title, message)
    except ValidationError as exc:
        if rows is not None:
            rows.close()
        return _refuse(run, exc)
    with closing(rows):
        try:
            importer.import_rows(rows, batch_size)
        except ValidationError as exc:  # an XLSX file broken part-way (CSV is checked whole)
            return _refuse(run, exc, done=importer.counts["records"])
    run.status = ImportRun.Status.DONE
    run.finished_at = timezone.now()
    run.save()
    return run


def _refuse(run: ImportRun, exc: ValidationError, done: int = 0) -> ImportRun:
    run.status = ImportRun.Status.FAILED
    run.error = " ".join(exc.messages)
    if done:
        run.error += " " + _("The %(done)d rows read before it were imported.") % {"done": done}
    run.finished_at = timezone.now()
    run.save()
    return run


def _label(name: str) -> str:
    return _("field “%(field)s”") % {"field": name}


def _known_titles(mapping: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """Normalised title -> field: the default aliases, overridden by the mapping. A field the
    mapping assigns loses its default aliases (a mapped "mobile" beats a column named "phone")."""
    if mapping is None:
        return dict(_DEFAULT_KNOWN)
    if not isinstance(mapping, Mapping) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in mapping.items()
    ):
        raise ValidationError(
            _("The mapping must be an object of “file column title”: “field name” (or null)."),
            code="bad_mapping",
        )
    unknown = {
        title: target for title, target in mapping.items() if target and target not in FIELDS
    }
    if unknown:
        raise ValidationError(
            _("The mapping names unknown fields: %(unknown)s. Fields are: %(fields)s."),
            code="bad_mapping",
            params={
                "unknown": ", ".join(f"“{t}” (for column “{c}”)" for c, t in unknown.items()),
                "fields": ", ".join(FIELDS),
            },
        )
    assigned = {target for target in mapping.values() if target}
    known: dict[str, str | None] = {
        title: name for title, name in _DEFAULT_KNOWN.items() if name not in assigned
    }
    known.update({tabular.normalize_header(title): target for title, target in mapping.items()})
    return known


def _check_file(file: BinaryIO, file_name: str, known: Mapping[str, Any]) -> str:
    """The file's SHA-256; a CSV file is also read through, so that a file broken part-way is
    refused before the first write. Leaves the file at its start."""
    extension = tabular.file_extension(file_name)
    digest = hashlib.sha256()
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    file.seek(0)
    if extension == ".csv":
        for _row in tabular.read_rows(file, file_name, known=known):
            pass
        file.seek(0)
    return digest.hexdigest()


def _check_header(header: tabular.Header, file_name: str) -> None:
    if not set(header.fields) & set(IDENTIFIERS):
        raise ValidationError(
            _(
                "“%(name)s” has no column to find customers by: it needs a phone, email, card "
                "number or id column, e.g. “телефон”, “email”, “номер карты”, “id” "
                "(columns found: %(found)s)."
            ),
            code="no_identifier_column",
            params={
                "name": file_name,
                "found": ", ".join(f"“{t}”" for t in header.titles) or "—",
            },
        )


class _Importer:
    def __init__(self, *, run: ImportRun, layout: RowLayout, user: AbstractBaseUser | None):
        self.run = run
        self.layout = layout
        self.user = user
        self.counts: Counter[str] = Counter()
        self.issues: list[ImportIssue] = []
        self.note = (_("Import of %(file)s") % {"file": run.file_name})[:255]

    def issue(self, level: str, row: int | None, column: str, message: str, record_id=""):
        self.issues.append(
            ImportIssue(
                run=self.run,
                level=level,
                record_id=record_id[:100],
                position=row,
                field=column[:100],
                message=message,
            )
        )
        self.counts["warnings" if level == ImportIssue.Level.WARNING else "errors"] += 1

    def import_rows(self, rows: Iterable[tuple[int, list[Any]]], batch_size: int) -> None:
        parse = self.layout.parse
        for chunk in _chunks(rows, parse, batch_size):
            self.counts["records"] += chunk.records
            self.counts["rejected"] += chunk.rejected
            for number, column, message, record_id in chunk.problems:
                self.issue(ImportIssue.Level.ERROR, number, column, message, record_id)
            self.import_batch(chunk.people)  # the last one may be empty: it saves the counts

    def import_batch(self, people: list[Person]) -> None:
        with transaction.atomic():
            identity_lock()
            if people:
                self._write(people)
            ImportIssue.objects.bulk_create(self.issues, batch_size=1000)
            self.issues = []
            for name in _COUNTS:
                setattr(self.run, name, self.counts[name])
            self.run.save()

    def _write(self, people: list[Person]) -> None:
        started = timezone.now()
        resolver = BatchResolver()
        ids: list[int] = resolver.resolve([p.record for p in people])  # type: ignore[assignment]
        self.counts["customers_created"] += resolver.counts[Outcome.CREATED]
        self.counts["customers_matched"] += resolver.counts[Outcome.MATCHED]
        self.counts["customers_merged"] += resolver.counts["merged_customers"]
        self.counts["suspicions"] += resolver.counts["suspicions"]
        if resolver.counts["merged_customers"]:
            ids = _survivors(ids)

        created: set[int] = set()
        touched: set[int] = set()
        for pk, created_at in (
            Customer.objects.filter(pk__in=set(ids))
            .filter(Q(created_at__gte=started) | Q(updated_at__gte=started))
            .values_list("pk", "created_at")
        ):
            touched.add(pk)
            if created_at >= started:
                created.add(pk)
        touched.update(
            ExternalId.objects.filter(customer_id__in=set(ids) - created, created_at__gte=started)
            .values_list("customer_id", flat=True)
            .distinct()
        )
        touched |= self._write_consents(people, ids, created)

        first_seen: set[int] = set()
        for pk in ids:
            if pk in created and pk not in first_seen:
                first_seen.add(pk)
                self.counts["created"] += 1
            elif pk in touched:
                self.counts["updated"] += 1
            else:
                self.counts["unchanged"] += 1

    def _write_consents(self, people: list[Person], ids: list[int], created: set[int]) -> set[int]:
        """Append each consent the file states unless the customer's current one for that channel
        already says the same; a contrary consent older than the current one is reported and
        skipped (it would not change the current state). Returns the customers given one."""
        wanted = [(pk, p) for p, pk in zip(people, ids, strict=True) if p.consents]
        if not wanted:
            return set()
        latest = _latest_consents({pk for pk, _p in wanted} - created, self.layout.channels)
        rows: list[tuple[int, str, bool, dt.datetime]] = []
        for pk, person in wanted:
            for channel, granted, when, column in person.consents:
                current = latest.get((pk, channel))
                if current is not None and current[0] == granted:
                    continue
                if current is not None and when <= current[1]:
                    self.issue(
                        ImportIssue.Level.WARNING,
                        person.number,
                        column,
                        _(
                            "“%(value)s” of %(when)s is older than the customer's current "
                            "consent (“%(current)s” of %(current_when)s, from %(source)s): kept "
                            "the current one."
                        )
                        % {
                            "value": _("yes") if granted else _("no"),
                            "when": timezone.localtime(when).strftime("%Y-%m-%d %H:%M"),
                            "current": _("yes") if current[0] else _("no"),
                            "current_when": timezone.localtime(current[1]).strftime(
                                "%Y-%m-%d %H:%M"
                            ),
                            "source": current[2],
                        },
                        person.record_id,
                    )
                    continue
                latest[(pk, channel)] = (granted, when, self.run.source)
                rows.append((pk, channel, granted, when))
        _insert_consents(rows, source=self.run.source, user=self.user, note=self.note)
        return {row[0] for row in rows}


@dataclass
class _Chunk:
    """One batch's rows as read: the good ones, and what was wrong with the others."""

    people: list[Person] = field(default_factory=list)
    records: int = 0
    rejected: int = 0
    problems: list[tuple[int, str, str, str]] = field(default_factory=list)  # row, column, ...


def _chunks(rows: Iterable[tuple[int, list[Any]]], parse, batch_size: int) -> Iterator[_Chunk]:
    """Chunks of `batch_size` good rows (the last one possibly empty); blank rows skipped."""
    chunk = _Chunk()
    for number, cells in rows:
        if not any(cell_text(cell) for cell in cells):
            continue  # blank lines, Excel's trailing formatted rows
        chunk.records += 1
        try:
            chunk.people.append(parse(number, cells))
        except RowRejected as exc:
            chunk.rejected += 1
            chunk.problems += [(number, c, m, exc.record_id) for c, m in exc.problems]
        if len(chunk.people) >= batch_size:
            yield chunk
            chunk = _Chunk()
    yield chunk


def _latest_consents(
    customer_ids: set[int], channels: list[str]
) -> dict[tuple[int, str], tuple[bool, dt.datetime, str]]:
    """(customer, channel) -> (granted, when, source) of the current consent."""
    if not customer_ids:
        return {}
    rows = (
        Consent.objects.filter(customer_id__in=customer_ids, channel__in=channels)
        .order_by("customer_id", "channel", "-occurred_at", "-id")
        .values_list("customer_id", "channel", "granted", "occurred_at", "source")
    )
    if connection.vendor == "postgresql":
        rows = rows.distinct("customer_id", "channel")  # the latest row per key only
    latest: dict[tuple[int, str], tuple[bool, dt.datetime, str]] = {}
    for row in rows:
        latest.setdefault((row[0], row[1]), row[2:])
    return latest


def _insert_consents(rows: list[tuple[int, str, bool, dt.datetime]], *, source, user, note) -> None:
    """Append consent rows (customer id, channel, granted, when): COPY on PostgreSQL."""
    if not rows:
        return
    now = timezone.now()
    user_id = user.pk if user is not None else None
    if connection.vendor == "postgresql":
        copy_rows(
            Consent._meta.db_table,
            _CONSENT_COLUMNS,
            ((*row, source, now, user_id, note) for row in rows),
        )
        return
    Consent.objects.bulk_create(
        [
            Consent(**dict(zip(_CONSENT_COLUMNS, (*row, source, now, user_id, note), strict=True)))
            for row in rows
        ],
        batch_size=1000,
    )


def _survivors(ids: list[int]) -> list[int]:
    """Ids with every customer merged away in this batch replaced by the one it merged into
    (a MergeRecord follows its survivor into later merges, so one step is enough)."""
    into = dict(
        MergeRecord.objects.filter(merged_customer_id__in=set(ids)).values_list(
            "merged_customer_id", "survivor_id"
        )
    )
    return [into.get(pk, pk) for pk in ids]
