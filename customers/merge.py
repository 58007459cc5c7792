"""Merging two records of one person: B moves into A, nothing lost or duplicated.

`customer_merge` is the one merge service (automatic merges, the admin action, the API). What
hangs off a customer is moved by *merge steps*; each app registers its own (the loyalty app moves
the bonus ledger and the status history) with `@register_merge_step("name")`, so the service never
needs editing when a new kind of row appears.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import (
    IDENTIFIER_COLUMNS,
    PERSONAL_FIELDS,
    Consent,
    Customer,
    DuplicateSuspicion,
    ExternalId,
    FamilyMember,
    IdentifierAlias,
    MergeRecord,
    Purchase,
    Reservation,
)

MergeStep = Callable[[Customer, Customer], int]

_steps: dict[str, MergeStep] = {}

NAME_FIELDS = ("last_name", "first_name", "middle_name")
IDENTIFIER_ALIAS_KIND = {column: kind for kind, column in IDENTIFIER_COLUMNS.items()}
MERGED_FIELDS = (*IDENTIFIER_COLUMNS.values(), *PERSONAL_FIELDS)


def register_merge_step(name: str) -> Callable[[MergeStep], MergeStep]:
    """Decorator: `step(survivor, merged) -> rows moved`, run inside the merge's transaction
    before the merged customer is deleted."""

    def decorator(step: MergeStep) -> MergeStep:
        _steps[name] = step
        return step

    return decorator


def _norm_name(value: str) -> str:
    return " ".join(value.replace("ё", "е").replace("Ё", "Е").casefold().split())


def merge_conflict(
    a: Customer, b: Customer, incoming: Mapping[str, Any] | None = None
) -> str | None:
    """Why two customers must not be merged automatically, or None when they may be.

    They may when neither is marked "do not merge" and no two non-empty names or birth dates
    disagree among the two cards and the incoming record that brought them together.
    """
    if a.do_not_merge or b.do_not_merge:
        return _("one of them is marked “do not merge”")
    people: list[Mapping[str, Any]] = [
        {f: getattr(a, f) for f in (*NAME_FIELDS, "birth_date")},
        {f: getattr(b, f) for f in (*NAME_FIELDS, "birth_date")},
        incoming or {},
    ]
    labels = {
        "last_name": _("different last names"),
        "first_name": _("different first names"),
        "middle_name": _("different middle names"),
    }
    for name in NAME_FIELDS:
        values = {_norm_name(p[name]) for p in people if p.get(name)}
        if len(values) > 1:
            return labels[name]
    births = {p["birth_date"] for p in people if p.get("birth_date")}
    if len(births) > 1:
        return _("different birth dates")
    return None


def _rank_and_time(customer: Customer, column: str) -> tuple[int, str]:
    from .identity import source_rank

    source = (customer.field_sources or {}).get(column)
    if source:
        return source_rank(source[0]), source[1]
    # Data loaded before field sources were kept: the customer's own origin and last update.
    return source_rank(customer.source), customer.updated_at.isoformat()


@transaction.atomic
def customer_merge(
    *,
    survivor: Customer,
    merged: Customer,
    reason: str,
    user=None,
    source: str = "",
) -> MergeRecord:
    """Merge customer `merged` (B) into `survivor` (A) and delete B. Atomic and safe to repeat.

    Every row hanging off B moves to A (purchases, family, consents with their history, external
    ids, and whatever the registered merge steps move). A keeps, field by field, the value from
    the more trusted source, then the more recent one; identifiers A does not keep become
    aliases, so lookups by B's old phone, email or card find A. A MergeRecord keeps B's card.
    """
    done = MergeRecord.objects.filter(merged_customer_id=merged.pk).first()
    if done is not None:
        return done
    if survivor.pk == merged.pk:
        raise ValueError("a customer cannot be merged into itself")
    rows = {
        c.pk: c
        for c in Customer.objects.select_for_update().filter(
            pk__in=sorted([survivor.pk, merged.pk])
        )
    }
    for gone in (merged.pk, survivor.pk):
        if gone not in rows:
            # Merged away by a concurrent call that committed before our lock (possibly the
            # opposite way round): the two are one customer already.
            done = MergeRecord.objects.filter(merged_customer_id=gone).first()
            if done is not None and done.survivor_id in rows:
                return done
            raise Customer.DoesNotExist(f"customer {gone} does not exist")
    a, b = rows[survivor.pk], rows[merged.pk]

    snapshot = model_to_dict(b)
    snapshot["field_sources"] = b.field_sources
    moved = {name: step(a, b) for name, step in _steps.items()}

    sources = dict(a.field_sources or {})
    left_behind: list[tuple[str, str]] = []
    updates: dict[str, Any] = {}
    for column in MERGED_FIELDS:
        a_value, b_value = getattr(a, column), getattr(b, column)
        if b_value in (None, "") or a_value == b_value:
            continue
        take_b = a_value in (None, "") or _rank_and_time(b, column) > _rank_and_time(a, column)
        if take_b:
            updates[column] = b_value
            if column in (b.field_sources or {}):
                sources[column] = b.field_sources[column]
            loser = a_value
        else:
            loser = b_value
        if column in IDENTIFIER_ALIAS_KIND and loser:
            left_behind.append((IDENTIFIER_ALIAS_KIND[column], loser))

    record = MergeRecord(
        survivor=a,
        merged_customer_id=b.pk,
        merged_phone=b.phone or "",
        merged_email=b.email or "",
        merged_card_number=b.card_number or "",
        merged_data=_jsonable(snapshot),
        moved=moved,
        reason=reason,
        merged_by=user,
        source=source,
    )
    do_not_merge = a.do_not_merge or b.do_not_merge
    b.delete()  # frees B's identifiers for A

    for column, value in updates.items():
        setattr(a, column, value)
    a.field_sources = sources
    a.do_not_merge = do_not_merge
    a.save()
    for kind, value in left_behind:
        IdentifierAlias.objects.update_or_create(kind=kind, value=value, defaults={"customer": a})
    record.save()
    return record


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}


# The customers app's own rows. Other apps register theirs in their AppConfig.ready().


@register_merge_step("purchases")
def _move_purchases(a: Customer, b: Customer) -> int:
    return Purchase.objects.filter(customer=b).update(customer=a)


@register_merge_step("reservations")
def _move_reservations(a: Customer, b: Customer) -> int:
    return Reservation.objects.filter(customer=b).update(customer=a)


@register_merge_step("family_members")
def _move_family(a: Customer, b: Customer) -> int:
    return FamilyMember.objects.filter(customer=b).update(customer=a)


@register_merge_step("consents")
def _move_consents(a: Customer, b: Customer) -> int:
    # The whole history moves; the current state per channel stays "the latest row".
    return Consent.objects.filter(customer=b).update(customer=a)


@register_merge_step("external_ids")
def _move_external_ids(a: Customer, b: Customer) -> int:
    return ExternalId.objects.filter(customer=b).update(customer=a)


@register_merge_step("aliases")
def _move_aliases(a: Customer, b: Customer) -> int:
    return IdentifierAlias.objects.filter(customer=b).update(customer=a)


@register_merge_step("earlier_merges")
def _move_merge_records(a: Customer, b: Customer) -> int:
    return MergeRecord.objects.filter(survivor=b).update(survivor=a)


@register_merge_step("duplicate_suspicions")
def _move_suspicions(a: Customer, b: Customer) -> int:
    now = timezone.now()
    between = DuplicateSuspicion.objects.filter(
        Q(customer=a, other=b) | Q(customer=b, other=a), status=DuplicateSuspicion.Status.OPEN
    )
    closed = between.update(status=DuplicateSuspicion.Status.MERGED, resolved_at=now)
    # Suspicions pairing B with a third customer now concern A; drop those A already has open.
    moved = 0
    for suspicion in DuplicateSuspicion.objects.filter(Q(customer=b) | Q(other=b)):
        if suspicion.customer_id == b.pk:
            suspicion.customer = a
        if suspicion.other_id == b.pk:
            suspicion.other = a
        duplicate = (
            suspicion.status == DuplicateSuspicion.Status.OPEN
            and DuplicateSuspicion.objects.filter(
                Q(customer=suspicion.customer, other=suspicion.other)
                | Q(customer=suspicion.other, other=suspicion.customer),
                status=DuplicateSuspicion.Status.OPEN,
            )
            .exclude(pk=suspicion.pk)
            .exists()
        )
        if duplicate:
            suspicion.delete()
        else:
            suspicion.save(update_fields=["customer", "other"])
            moved += 1
    return closed + moved
