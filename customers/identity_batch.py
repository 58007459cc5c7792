"""Identity resolution for thousands of records at once (POS files, customer-base imports).

The same rules as `customers.identity.customer_resolve`, set-based: one round of lookups for a
whole batch, new customers inserted in bulk, changed customers written back in one statement.
A record whose identifiers name two different customers (a merge or a suspicion: rare) is handed
to `customer_resolve` itself after the batch so far has been written, so both paths agree.

Callers hold `identity_lock()` for the transaction: identity writes are serialised chain-wide
(concurrent imports and API registrations), which is what makes "one person, one customer" hold.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from psycopg2.extras import execute_values

from .identity import (
    IDENTIFIER_FIELDS,
    PERSONAL_FIELDS,
    IdentityRecord,
    Outcome,
    customer_resolve,
    field_wins,
)
from .models import Customer, ExternalId, IdentifierAlias

# Serialises identity writes across processes (PostgreSQL advisory lock key: "identity").
IDENTITY_LOCK_KEY = 0x1D_E7_17_1D


def identity_lock() -> None:
    """Take the chain-wide identity lock until the current transaction ends (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IDENTITY_LOCK_KEY])


_COLUMNS = (
    "id",
    "card_number",
    "phone",
    "email",
    "do_not_merge",
    "field_sources",
    "source",
    *PERSONAL_FIELDS,
)


@dataclass(slots=True)
class _Row:
    """A customer as the batch sees it: existing (pk > 0) or to be inserted (pk < 0)."""

    pk: int
    values: dict[str, Any]
    changed: set[str]
    new: bool = False


class BatchResolver:
    """Resolve normalised records to customer ids; `counts` says what happened."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._next_temp = -1
        self._new_externals: list[tuple[int, tuple[str, str]]] = []
        self._aliases: list[tuple[str, str, int]] = []
        self._at_texts: dict[dt.datetime, str] = {}

    def resolve(self, records: Sequence[IdentityRecord | None]) -> list[int | None]:
        """Customer id per record (None for a record without identifiers: anonymous)."""
        result: list[int | None] = [None] * len(records)
        start = 0
        while start < len(records):
            start = self._resolve_run(records, start, result)
        return result

    # -- one run: from `start` until a record needs the full service ---------------------------

    def _resolve_run(
        self, records: Sequence[IdentityRecord | None], start: int, result: list[int | None]
    ) -> int:
        pending = [r for r in records[start:] if r is not None and r.has_identifier()]
        self._load(pending)
        position = start
        temp_positions: list[tuple[int, int]] = []
        while position < len(records):
            record = records[position]
            if record is None or not record.has_identifier():
                position += 1
                continue
            candidates = self._candidates(record)
            if len(candidates) > 1:
                break
            if candidates:
                row = self._rows[candidates[0]]
                self._apply(row, record)
                self.counts[Outcome.MATCHED] += 1
            else:
                row = self._new_row(record)
                self.counts[Outcome.CREATED] += 1
            if row.pk < 0:
                temp_positions.append((position, row.pk))
            else:
                result[position] = row.pk
            position += 1
        real_ids = self._flush()
        for pos, temp in temp_positions:
            result[pos] = real_ids[temp]
        if position < len(records):
            # Two customers named by one record: merge or suspicion, by the full service, now
            # that everything before it is written.
            resolution = customer_resolve(record=records[position])
            result[position] = resolution.customer.pk
            if resolution.merged_ids:
                # Earlier records of this batch may name a customer just merged away.
                gone = set(resolution.merged_ids)
                for earlier in range(position):
                    if result[earlier] in gone:
                        result[earlier] = resolution.customer.pk
            self.counts[resolution.outcome] += 1
            self.counts["merged_customers"] += len(resolution.merged_ids)
            self.counts["suspicions"] += len(resolution.suspicions)
            position += 1
        return position

    # -- lookups ---------------------------------------------------------------------------------

    def _load(self, records: list[IdentityRecord]) -> None:
        self._rows: dict[int, _Row] = {}
        self._by: dict[str, dict[str, int]] = {kind: {} for kind in IDENTIFIER_FIELDS}
        self._by_external: dict[tuple[str, str], int] = {}
        wanted = {kind: {getattr(r, kind) for r in records} - {None} for kind in IDENTIFIER_FIELDS}
        externals = {pair for r in records for pair in r.external_ids}

        fetch = _fetch_postgresql if connection.vendor == "postgresql" else _fetch_orm
        aliases, known_externals, customers = fetch(wanted, externals)
        for kind, value, customer_id in aliases:
            self._by[kind][value] = customer_id
        self._by_external.update(known_externals)
        for values in customers:
            pk = values["id"]
            self._rows[pk] = _Row(pk=pk, values=values, changed=set())
            for kind, column in IDENTIFIER_FIELDS.items():
                if values[column]:
                    key = values[column].lower() if kind == "email" else values[column]
                    self._by[kind][key] = pk

    def _candidates(self, record: IdentityRecord) -> list[int]:
        found: list[int] = []
        for kind in IDENTIFIER_FIELDS:
            value = getattr(record, kind)
            pk = self._by[kind].get(value) if value else None
            if pk is not None and pk not in found:
                found.append(pk)
        for pair in record.external_ids:
            pk = self._by_external.get(pair)
            if pk is not None and pk not in found:
                found.append(pk)
        return found

    # -- changes ---------------------------------------------------------------------------------

    def _new_row(self, record: IdentityRecord) -> _Row:
        at = self._at(record)
        values: dict[str, Any] = dict.fromkeys(PERSONAL_FIELDS, "")
        values.update(birth_date=None, household_size=None)
        values.update({k: v for k, v in record.data.items() if v not in (None, "")})
        for kind, column in IDENTIFIER_FIELDS.items():
            values[column] = getattr(record, kind)
        values["source"] = record.source
        values["do_not_merge"] = False
        given = [record.source, at]  # one list for every field: never changed in place
        values["field_sources"] = {
            f: given
            for f in (*PERSONAL_FIELDS, *IDENTIFIER_FIELDS.values())
            if values.get(f) not in (None, "")
        }
        row = _Row(pk=self._next_temp, values=values, changed=set(), new=True)
        self._next_temp -= 1
        self._rows[row.pk] = row
        for kind, column in IDENTIFIER_FIELDS.items():
            if values[column]:
                self._by[kind][values[column]] = row.pk
        for pair in record.external_ids:
            self._by_external[pair] = row.pk
            self._new_externals.append((row.pk, pair))
        return row

    def _at(self, record: IdentityRecord) -> str:
        """When the record's data was current, as field sources keep it (formatted once per
        distinct time: an import's records share one)."""
        if record.at is None:
            return timezone.now().isoformat()
        text = self._at_texts.get(record.at)
        if text is None:
            text = self._at_texts[record.at] = record.at.isoformat()
        return text

    def _apply(self, row: _Row, record: IdentityRecord) -> None:
        at = self._at(record)
        values = row.values

        def offer(column: str, value: Any) -> None:
            if value in (None, "") or values[column] == value:
                return  # field_wins' own first answers, without decoding the sources
            sources = values["field_sources"]
            if isinstance(sources, str):  # read undecoded (_fetch_postgresql)
                sources = values["field_sources"] = json.loads(sources)
            if field_wins(
                current_value=values[column],
                current_source=sources.get(column),
                new_value=value,
                new_source=record.source,
                new_at=at,
            ):
                values[column] = value
                sources[column] = [record.source, at]
                row.changed.update((column, "field_sources"))

        for kind, column in IDENTIFIER_FIELDS.items():
            value = getattr(record, kind)
            if value and values[column] != value and value not in self._by[kind]:
                old = values[column]
                offer(column, value)
                if values[column] == value:
                    self._by[kind][value] = row.pk
                    if old:
                        self._aliases.append((kind, old, row.pk))
        for name, value in record.data.items():
            offer(name, value)
        for pair in record.external_ids:
            if pair not in self._by_external:
                self._by_external[pair] = row.pk
                self._new_externals.append((row.pk, pair))

    def _flush(self) -> dict[int, int]:
        """Write new and changed customers; returns temp id -> real id."""
        now = timezone.now()
        new_rows = [row for row in self._rows.values() if row.new]
        ids = _insert_customers([row.values for row in new_rows], now)
        real = {row.pk: pk for row, pk in zip(new_rows, ids, strict=True)}

        changed = [row for row in self._rows.values() if row.changed and not row.new]
        if changed:
            _update_customers(changed, now)
        _insert_external_ids([(real.get(pk, pk), s, i) for pk, (s, i) in self._new_externals], now)
        self._new_externals = []
        if self._aliases:
            IdentifierAlias.objects.bulk_create(
                [
                    IdentifierAlias(kind=k, value=v, customer_id=real.get(pk, pk))
                    for k, v, pk in self._aliases
                ],
                ignore_conflicts=True,
            )
            self._aliases = []
        # New rows are now ordinary existing rows for the rest of the run.
        for row in new_rows:
            row.new = False
            row.pk = real[row.pk]
            row.values["id"] = row.pk
        self._rows = {row.pk: row for row in self._rows.values()}
        for index in self._by.values():
            for key, pk in index.items():
                if pk < 0:
                    index[key] = real[pk]
        for key, pk in self._by_external.items():
            if pk < 0:
                self._by_external[key] = real[pk]
        for row in self._rows.values():
            row.changed.clear()
        return real


# -- reading ---------------------------------------------------------------------------------------

_Fetched = tuple[
    list[tuple[str, str, int]],  # aliases: (kind, value, customer id)
    dict[tuple[str, str], int],  # external ids: (system, id) -> customer id
    list[dict[str, Any]],  # customers: _COLUMNS -> value
]


def _fetch_orm(wanted: dict[str, set[str]], externals: set[tuple[str, str]]) -> _Fetched:
    alias_q = Q(pk__in=[])
    for kind, values in wanted.items():
        if values:
            alias_q |= Q(kind=kind, value__in=values)
    aliases = list(
        IdentifierAlias.objects.filter(alias_q).values_list("kind", "value", "customer_id")
    )
    external_q = Q(pk__in=[])
    for system in {s for s, _i in externals}:
        external_q |= Q(system=system, external_id__in=[i for s, i in externals if s == system])
    known = {
        (system, external_id): customer_id
        for system, external_id, customer_id in ExternalId.objects.filter(external_q).values_list(
            "system", "external_id", "customer_id"
        )
    }
    customer_q = Q(pk__in={pk for _k, _v, pk in aliases} | set(known.values()))
    for kind, values in wanted.items():
        if values:
            # Emails through LOWER(email), the expression of their unique index: a plain
            # `email IN (...)` has no index, and turns the whole OR into a sequential scan.
            column = "_email" if kind == "email" else IDENTIFIER_FIELDS[kind]
            customer_q |= Q(**{f"{column}__in": values})
    found = Customer.objects.annotate(_email=Lower("email")).filter(customer_q)
    return aliases, known, list(found.values(*_COLUMNS))


def _fetch_postgresql(wanted: dict[str, set[str]], externals: set[tuple[str, str]]) -> _Fetched:
    """The same three reads as `_fetch_orm`, with arrays (`= ANY(%s)`): compiling IN lists of
    thousands of values took the ORM longer than the database took to answer."""
    aliases: list[tuple[str, str, int]] = []
    known: dict[tuple[str, str], int] = {}
    with connection.cursor() as cursor:
        kinds = [kind for kind, values in wanted.items() if values]
        if kinds:
            cursor.execute(
                f"SELECT kind, value, customer_id FROM {IdentifierAlias._meta.db_table} WHERE "
                + " OR ".join("(kind = %s AND value = ANY(%s))" for _kind in kinds),
                [x for kind in kinds for x in (kind, list(wanted[kind]))],
            )
            aliases = cursor.fetchall()
        by_system: dict[str, list[str]] = {}
        for system, external_id in externals:
            by_system.setdefault(system, []).append(external_id)
        if by_system:
            cursor.execute(
                f"SELECT system, external_id, customer_id FROM {ExternalId._meta.db_table} WHERE "
                + " OR ".join("(system = %s AND external_id = ANY(%s))" for _s in by_system),
                [x for item in by_system.items() for x in item],
            )
            known = {(system, i): pk for system, i, pk in cursor.fetchall()}
        cursor.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM {Customer._meta.db_table} WHERE id = ANY(%s) "
            "OR card_number = ANY(%s) OR phone = ANY(%s) OR lower(email) = ANY(%s)",
            [
                list({pk for _k, _v, pk in aliases} | set(known.values())),
                list(wanted["card"]),
                list(wanted["phone"]),
                list(wanted["email"]),
            ],
        )
        # field_sources stays JSON text (Django leaves jsonb undecoded) until a field differs:
        # most records repeat what the card holds, and decoding took longer than the query.
        customers = [dict(zip(_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    return aliases, known, customers


# -- writing (COPY and UPDATE ... FROM VALUES on PostgreSQL, the ORM's bulk methods elsewhere) ---

_INSERTED = tuple(c for c in _COLUMNS if c != "id")


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """COPY rows into a table (PostgreSQL only): the bulk path of identity writes and imports.

    Values: None, str, bool, int, date/datetime, dict/list (JSON). No model validation runs; the
    table's constraints still do.
    """
    moments: dict[dt.date, str] = {}  # a batch repeats its timestamps: format each once

    def text(value: Any) -> str:
        kind = value.__class__
        if kind is str:
            return value.translate(_COPY_ESCAPES)
        if value is None:
            return r"\N"
        if kind is bool:
            return "t" if value else "f"
        if kind is int:
            return str(value)
        if isinstance(value, dt.date):
            if value not in moments:
                moments[value] = value.isoformat()
            return moments[value]
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False).translate(_COPY_ESCAPES)
        return str(value).translate(_COPY_ESCAPES)

    buffer = io.StringIO()
    buffer.writelines("\t".join(map(text, row)) + "\n" for row in rows)
    size = buffer.tell()
    buffer.seek(0)
    with connection.cursor() as cursor:
        # One read of the whole buffer (psycopg2 reads 8 KB at a time by default).
        cursor.copy_expert(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer, max(size, 8192)
        )


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _insert_customers(rows: list[dict[str, Any]], now: dt.datetime) -> list[int]:
    """Insert new customers (values by column); returns their ids in order."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objects = [
            Customer(
                **{k: v for k, v in values.items() if k != "id"}, created_at=now, updated_at=now
            )
            for values in rows
        ]
        Customer.objects.bulk_create(objects, batch_size=1000)
        return [obj.pk for obj in objects]
    # Ids reserved from the sequence in one round trip, then one COPY: bulk_create's SQL
    # compilation cost more than the database's work (PERFORMANCE.md: COPY is the bulk path).
    table = Customer._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)",
            [len(rows)],
        )
        ids = [r[0] for r in cursor.fetchall()]
    copy_rows(
        table,
        ("id", *_INSERTED, "created_at", "updated_at"),
        (
            (pk, *(values[c] for c in _INSERTED), now, now)
            for pk, values in zip(ids, rows, strict=True)
        ),
    )
    return ids


def _insert_external_ids(rows: list[tuple[int, str, str]], now: dt.datetime) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        copy_rows(
            ExternalId._meta.db_table,
            ("customer_id", "system", "external_id", "created_at"),
            ((pk, s, i, now) for pk, s, i in rows),
        )
        return
    ExternalId.objects.bulk_create(
        [ExternalId(customer_id=pk, system=s, external_id=i, created_at=now) for pk, s, i in rows],
        batch_size=1000,
    )


def _update_customers(rows: list[_Row], now: dt.datetime) -> None:
    """Write the changed columns of existing customers: one statement per set of columns."""
    by_columns: dict[tuple[str, ...], list[_Row]] = {}
    for row in rows:
        by_columns.setdefault(tuple(sorted(row.changed)), []).append(row)
    for columns, group in by_columns.items():
        if connection.vendor == "postgresql":
            _update_from_values(columns, group, now)
            continue
        objects = []
        for row in group:
            obj = Customer(pk=row.pk, updated_at=now)
            for column in columns:
                setattr(obj, column, row.values[column])
            objects.append(obj)
        # Chunks of 500 keep bulk_update's CASE small (PERFORMANCE.md).
        Customer.objects.bulk_update(objects, [*columns, "updated_at"], batch_size=500)


def _update_from_values(columns: tuple[str, ...], rows: list[_Row], now: dt.datetime) -> None:
    """UPDATE ... FROM (VALUES ...): tens of thousands of rows a second where bulk_update's CASE
    manages hundreds (PERFORMANCE.md)."""
    casts = [Customer._meta.get_field(c).db_type(connection) for c in columns]
    template = "(%s::bigint, " + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    assignments = ", ".join(f"{c} = v.{c}" for c in columns)
    values = [
        (
            row.pk,
            *(
                _json_text(row.values[c]) if c == "field_sources" else row.values[c]
                for c in columns
            ),
        )
        for row in rows
    ]
    with connection.cursor() as cursor:
        execute_values(
            cursor.cursor,
            f"UPDATE {Customer._meta.db_table} AS c SET {assignments}, "
            f"updated_at = {cursor.mogrify('%s', [now]).decode()} "
            f"FROM (VALUES %s) AS v(id, {', '.join(columns)}) WHERE c.id = v.id",
            values,
            template=template,
            page_size=1000,
        )
