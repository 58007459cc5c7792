"""Identity resolution: one customer per person, whichever door they came through.

Every entry point (POS import, customer-base import, API, admin) hands an `IdentityRecord` to
`customer_resolve`, which finds the customer by card, phone, email or external id, fills and
updates fields by source precedence, merges two records of one person, or — when their personal
data disagree — attaches to the strongest identifier's customer and raises a duplicate suspicion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from .merge import customer_merge, merge_conflict
from .models import (
    IDENTIFIER_COLUMNS,
    PERSONAL_FIELDS,
    Customer,
    DuplicateSuspicion,
    ExternalId,
    IdentifierAlias,
    MergeRecord,
    Source,
)
from .normalize import normalize_card, normalize_email, normalize_phone

# Identifier kinds from the strongest to the weakest: the record attaches to the customer named
# by the strongest one when two customers are named and cannot be merged.
IDENTIFIER_FIELDS = IDENTIFIER_COLUMNS
# How far each source is trusted with a customer's personal data.
SOURCE_RANK = {
    Source.POS: 1,
    Source.APP: 2,
    Source.SITE: 2,
    Source.CONTACT_CENTRE: 2,
    Source.ADMIN: 3,
}


class Outcome:
    CREATED = "created"
    MATCHED = "matched"
    MERGED = "merged"
    SUSPECTED = "suspected"


@dataclass
class IdentityRecord:
    """What one channel says about one person. Identifiers may be raw (any notation)."""

    source: str
    card: str | None = None
    phone: str | None = None
    email: str | None = None
    external_ids: Iterable[tuple[str, str]] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    at: dt.datetime | None = None  # when the channel got this data; default: now

    def normalized(self) -> IdentityRecord:
        """A copy with canonical identifiers; every bad one reported under its own field."""
        errors: dict[str, ValidationError] = {}
        values: dict[str, str | None] = {}
        for name, normalize in (
            ("card", normalize_card),
            ("phone", normalize_phone),
            ("email", normalize_email),
        ):
            try:
                values[name] = normalize(getattr(self, name))
            except ValidationError as exc:
                errors[name] = exc
        unknown = set(self.data) - set(PERSONAL_FIELDS)
        if unknown:
            raise TypeError(f"unknown personal fields: {sorted(unknown)}")
        if errors:
            raise ValidationError(errors)
        external = tuple((str(s), str(i).strip()) for s, i in self.external_ids if str(i).strip())
        return IdentityRecord(
            source=self.source,
            external_ids=external,
            data=dict(self.data),
            at=self.at,
            **values,
        )

    def has_identifier(self) -> bool:
        return bool(self.card or self.phone or self.email or tuple(self.external_ids))


@dataclass
class Resolution:
    customer: Customer
    outcome: str
    merged_ids: list[int] = field(default_factory=list)
    suspicions: list[DuplicateSuspicion] = field(default_factory=list)
    changed_fields: list[str] = field(default_factory=list)


def personal_data_errors(data: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with personal fields from outside, by field (lengths, choices)."""
    errors: dict[str, str] = {}
    for name, value in data.items():
        model_field = Customer._meta.get_field(name)
        if value in (None, ""):
            continue
        if model_field.max_length and len(str(value)) > model_field.max_length:
            errors[name] = _("at most %(max)d characters") % {"max": model_field.max_length}
        elif model_field.choices and value not in {c[0] for c in model_field.choices}:
            errors[name] = _("“%(value)s” is not one of the allowed values") % {"value": value}
    return errors


def source_rank(source: str | None) -> int:
    return SOURCE_RANK.get(source, 0)


def field_wins(
    *,
    current_value: Any,
    current_source: tuple[str, str] | list[str] | None,
    new_value: Any,
    new_source: str,
    new_at: str,
) -> bool:
    """Whether a new value replaces the current one.

    An empty current value is always filled. Otherwise the more trusted source wins (admin >
    app/site/contact centre > POS); between equally trusted sources the more recent wins, except
    that till data never overwrites till data already on the card (the till re-sends what it
    read from the card, often stale).
    """
    if new_value in (None, ""):
        return False
    if current_value in (None, ""):
        return True
    if current_value == new_value:
        return False
    cur_source, cur_at = (current_source or (None, ""))[:2]
    new_rank, cur_rank = source_rank(new_source), source_rank(cur_source)
    if new_rank != cur_rank:
        return new_rank > cur_rank
    if new_source == Source.POS:
        return False
    return new_at >= (cur_at or "")


def identifier_owner(kind: str, value: str) -> int | None:
    """The customer holding an identifier on the card, or known by it from a merge."""
    column = IDENTIFIER_FIELDS[kind]
    if kind == "email":
        # LOWER(email) is what the unique index holds: an exact lookup would scan the table.
        customers = Customer.objects.annotate(_email=Lower("email")).filter(_email=value.lower())
    else:
        customers = Customer.objects.filter(**{column: value})
    found = customers.values_list("pk", flat=True).first()
    if found is None:
        found = (
            IdentifierAlias.objects.filter(kind=kind, value=value)
            .values_list("customer_id", flat=True)
            .first()
        )
    return found


def _candidates(record: IdentityRecord) -> list[tuple[str, int]]:
    """(identifier kind, customer id) for each identifier naming a customer, strongest first."""
    found: list[tuple[str, int]] = []
    for kind in IDENTIFIER_FIELDS:
        value = getattr(record, kind)
        if value:
            pk = identifier_owner(kind, value)
            if pk is not None:
                found.append((kind, pk))
    for system, external_id in record.external_ids:
        pk = (
            ExternalId.objects.filter(system=system, external_id=external_id)
            .values_list("customer_id", flat=True)
            .first()
        )
        if pk is not None:
            found.append((f"external_id:{system}", pk))
    return found


def customer_resolve(*, record: IdentityRecord, user=None) -> Resolution:
    """Find or create the one customer a record describes, merging or flagging duplicates.

    Atomic. Raises ValidationError naming each bad identifier, or when the record carries no
    identifier at all. Two concurrent calls for the same new person create one customer.
    """
    record = record.normalized()
    if not record.has_identifier():
        raise ValidationError(
            _("A customer needs a card number, a phone, an email or an external id."),
            code="no_identifier",
        )
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _resolve(record, user)
        except IntegrityError:
            # Another writer created or claimed one of these identifiers after our lookup:
            # resolve again against what is committed now.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _resolve(record: IdentityRecord, user) -> Resolution:
    at = (record.at or timezone.now()).isoformat()
    found = _candidates(record)
    if not found:
        return Resolution(customer=_create(record, at), outcome=Outcome.CREATED)

    ids = list(dict.fromkeys(pk for _kind, pk in found))
    # Lock in id order so two resolutions touching the same customers cannot deadlock.
    locked = {c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=sorted(ids))}
    primary = locked[ids[0]]
    resolution = Resolution(customer=primary, outcome=Outcome.MATCHED)
    shared_by: dict[int, list[str]] = {}
    for kind, pk in found:
        shared_by.setdefault(pk, []).append(kind.split(":")[0])

    kept_apart: set[int] = set()
    for pk in ids[1:]:
        other = locked[pk]
        reason = merge_conflict(primary, other, record.data)
        if reason is None:
            customer_merge(
                survivor=primary,
                merged=other,
                reason=MergeRecord.Reason.AUTOMATIC,
                user=user,
                source=record.source,
            )
            primary.refresh_from_db()
            resolution.merged_ids.append(pk)
        else:
            kept_apart.add(pk)
            resolution.suspicions.append(
                _suspect(primary, other, shared=shared_by[pk], reason=reason, source=record.source)
            )
    if resolution.suspicions:
        resolution.outcome = Outcome.SUSPECTED
    elif resolution.merged_ids:
        resolution.outcome = Outcome.MERGED
    resolution.changed_fields = _apply(primary, record, at, kept_apart)
    return resolution


def _create(record: IdentityRecord, at: str) -> Customer:
    data = {k: v for k, v in record.data.items() if v not in (None, "")}
    customer = Customer(
        source=record.source,
        card_number=record.card,
        phone=record.phone,
        email=record.email,
        field_sources={f: [record.source, at] for f in (*data, *_identifier_columns(record)) if f},
        **data,
    )
    customer.full_clean(validate_unique=False, validate_constraints=False)
    customer.save()
    ExternalId.objects.bulk_create(
        [ExternalId(customer=customer, system=s, external_id=i) for s, i in record.external_ids]
    )
    return customer


def _identifier_columns(record: IdentityRecord) -> list[str]:
    return [column for kind, column in IDENTIFIER_FIELDS.items() if getattr(record, kind)]


def _apply(customer: Customer, record: IdentityRecord, at: str, kept_apart: set[int]) -> list[str]:
    """Write the record's identifiers and personal data to the customer by source precedence."""
    sources = dict(customer.field_sources or {})
    changed: list[str] = []

    def offer(column: str, value: Any) -> None:
        if field_wins(
            current_value=getattr(customer, column),
            current_source=sources.get(column),
            new_value=value,
            new_source=record.source,
            new_at=at,
        ):
            setattr(customer, column, value)
            sources[column] = [record.source, at]
            changed.append(column)

    for kind, column in IDENTIFIER_FIELDS.items():
        value = getattr(record, kind)
        if not value or getattr(customer, column) == value:
            continue
        holder = identifier_owner(kind, value)
        if holder is not None and holder != customer.pk:
            continue  # someone else's (a suspected duplicate kept apart): leave it with them
        old = getattr(customer, column)
        offer(column, value)
        if old and column in changed:
            # The customer changed phone/email/card: the old one still finds them.
            IdentifierAlias.objects.get_or_create(
                kind=kind, value=old, defaults={"customer": customer}
            )
    for name, value in record.data.items():
        offer(name, value)

    known = set(
        ExternalId.objects.filter(
            system__in=[s for s, _i in record.external_ids],
            external_id__in=[i for _s, i in record.external_ids],
        ).values_list("system", "external_id")
    )
    ExternalId.objects.bulk_create(
        [
            ExternalId(customer=customer, system=s, external_id=i)
            for s, i in record.external_ids
            if (s, i) not in known
        ]
    )
    if changed:
        customer.field_sources = sources
        customer.full_clean(validate_unique=False, validate_constraints=False)
        customer.save(update_fields=[*changed, "field_sources", "updated_at"])
    return changed


def _suspect(
    customer: Customer, other: Customer, *, shared: list[str], reason: str, source: str
) -> DuplicateSuspicion:
    """The pair's open suspicion, or the one a marketer dismissed, or a new open one.

    A pair judged "different people" is never raised again. The pair is matched exactly: a
    suspicion closed by a merge points from the survivor to itself and concerns no one else.
    """
    a, b = customer, other
    pair = DuplicateSuspicion.objects.filter(Q(customer=a, other=b) | Q(customer=b, other=a))
    existing = (
        pair.filter(status=DuplicateSuspicion.Status.OPEN).first()
        or pair.filter(status=DuplicateSuspicion.Status.DISMISSED).first()
    )
    if existing:
        return existing
    return DuplicateSuspicion.objects.create(
        customer=a,
        other=b,
        shared=", ".join(dict.fromkeys(shared)),
        reason=reason,
        source=source,
    )
