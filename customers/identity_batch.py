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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

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


@dataclass
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

        alias_q = Q(pk__in=[])
        for kind, values in wanted.items():
            if values:
                alias_q |= Q(kind=kind, value__in=values)
        for kind, value, customer_id in IdentifierAlias.objects.filter(alias_q).values_list(
            "kind", "value", "customer_id"
        ):
            self._by[kind][value] = customer_id
        external_q = Q(pk__in=[])
        for system in {s for s, _i in externals}:
            external_q |= Q(system=system, external_id__in=[i for s, i in externals if s == system])
        for system, external_id, customer_id in ExternalId.objects.filter(external_q).values_list(
            "system", "external_id", "customer_id"
        ):
            self._by_external[(system, external_id)] = customer_id

        customer_q = Q(
            pk__in=set(self._by_external.values())
            | {pk for index in self._by.values() for pk in index.values()}
        )
        for kind, values in wanted.items():
            if values:
                customer_q |= Q(**{f"{IDENTIFIER_FIELDS[kind]}__in": values})
        for values in Customer.objects.filter(customer_q).values(*_COLUMNS):
            pk = values["id"]
            self._rows[pk] = _Row(pk=pk, values=values, changed=set())
            for kind, column in IDENTIFIER_FIELDS.items():
                if values[column]:
                    self._by[kind][values[column]] = pk

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
        at = (record.at or timezone.now()).isoformat()
        values: dict[str, Any] = dict.fromkeys(PERSONAL_FIELDS, "")
        values.update(birth_date=None, household_size=None)
        values.update({k: v for k, v in record.data.items() if v not in (None, "")})
        for kind, column in IDENTIFIER_FIELDS.items():
            values[column] = getattr(record, kind)
        values["source"] = record.source
        values["do_not_merge"] = False
        values["field_sources"] = {
            f: [record.source, at]
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

    def _apply(self, row: _Row, record: IdentityRecord) -> None:
        at = (record.at or timezone.now()).isoformat()
        values = row.values
        sources = values["field_sources"]

        def offer(column: str, value: Any) -> None:
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
        objects = [
            Customer(
                **{k: v for k, v in row.values.items() if k != "id"}, created_at=now, updated_at=now
            )
            for row in new_rows
        ]
        Customer.objects.bulk_create(objects, batch_size=1000)
        real = {row.pk: obj.pk for row, obj in zip(new_rows, objects, strict=True)}

        changed = [row for row in self._rows.values() if row.changed and not row.new]
        if changed:
            _update_customers(changed, now)
        ExternalId.objects.bulk_create(
            [
                ExternalId(customer_id=real.get(pk, pk), system=s, external_id=i, created_at=now)
                for pk, (s, i) in self._new_externals
            ],
            batch_size=1000,
        )
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


def _update_customers(rows: list[_Row], now: dt.datetime) -> None:
    """Write the changed columns of existing customers: one statement per set of columns."""
    by_columns: dict[tuple[str, ...], list[_Row]] = {}
    for row in rows:
        by_columns.setdefault(tuple(sorted(row.changed)), []).append(row)
    for columns, group in by_columns.items():
        objects = []
        for row in group:
            obj = Customer(pk=row.pk, updated_at=now)
            for column in columns:
                setattr(obj, column, row.values[column])
            objects.append(obj)
        # Few rows change in a steady state (POS files repeat what the card holds); chunks of
        # 500 keep bulk_update's CASE small (PERFORMANCE.md).
        Customer.objects.bulk_update(objects, [*columns, "updated_at"], batch_size=500)
