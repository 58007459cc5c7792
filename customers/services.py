"""Writes to the customer base. The admin, the API, imports and tasks all call these."""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import (
    IDENTIFIER_COLUMNS,
    PERSONAL_FIELDS,
    Consent,
    Customer,
    FamilyMember,
    IdentifierAlias,
    Product,
    Source,
)
from .normalize import normalize_card, normalize_email, normalize_phone

IDENTIFIER_FIELDS = ("phone", "email", "card_number")
EDITABLE_FIELDS = (*IDENTIFIER_FIELDS, *PERSONAL_FIELDS, "do_not_merge")
_ALIAS_KIND = {column: kind for kind, column in IDENTIFIER_COLUMNS.items()}

_NORMALIZERS = {"phone": normalize_phone, "email": normalize_email, "card_number": normalize_card}


def customer_normalize_identifiers(data: Mapping[str, Any]) -> dict[str, str | None]:
    """Canonical phone/email/card from raw input; every bad one is reported under its field."""
    result: dict[str, str | None] = {}
    errors: dict[str, list[ValidationError]] = {}
    for field, normalize in _NORMALIZERS.items():
        if field not in data:
            continue
        try:
            result[field] = normalize(data[field])
        except ValidationError as exc:
            errors[field] = [exc]
    if errors:
        raise ValidationError(errors)
    return result


def _identifier_taken(field: str, value: str, exclude_pk: int | None) -> bool:
    if field == "email":
        # LOWER(email) = value: the expression of the unique index, so no table scan.
        qs = Customer.objects.annotate(_email=Lower("email")).filter(_email=value.lower())
    else:
        qs = Customer.objects.filter(**{field: value})
    if exclude_pk is not None:
        qs = qs.exclude(pk=exclude_pk)
    return qs.exists()


def _check_identifiers_free(identifiers: Mapping[str, str | None], exclude_pk: int | None) -> None:
    messages = {
        "phone": _("This phone number already belongs to another customer."),
        "email": _("This email address already belongs to another customer."),
        "card_number": _("This loyalty card already belongs to another customer."),
    }
    errors = {
        field: ValidationError(messages[field], code="duplicate")
        for field, value in identifiers.items()
        if value and _identifier_taken(field, value, exclude_pk)
    }
    if errors:
        raise ValidationError(errors)


def _save_validated(
    customer: Customer,
    identifiers: Mapping[str, str | None],
    update_fields: list[str] | None = None,
) -> Customer:
    # full_clean reports every field's problem at once (and names it); the unique checks it runs
    # are repeated by the database, which settles a race between two writers.
    customer.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            customer.save(update_fields=update_fields)
    except IntegrityError:
        # Someone else took the identifier between our check and our insert.
        _check_identifiers_free(identifiers, customer.pk)
        raise
    return customer


def _record_sources(customer: Customer, fields: Any, source: str) -> None:
    """Remember who gave each value: an admin edit then beats app, site and till data."""
    at = timezone.now().isoformat()
    sources = dict(customer.field_sources or {})
    for name in fields:
        if name != "do_not_merge" and getattr(customer, name) not in (None, ""):
            sources[name] = [source, at]
    customer.field_sources = sources


def _release_aliases(identifiers: Mapping[str, str | None]) -> None:
    """An identifier now on a card no longer finds the customer it once belonged to."""
    for field, value in identifiers.items():
        if value:
            IdentifierAlias.objects.filter(kind=_ALIAS_KIND[field], value=value).delete()


@transaction.atomic
def customer_create(*, source: str = Source.ADMIN, **data: Any) -> Customer:
    """Create a customer from raw input: identifiers normalised, duplicates refused by field."""
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"customer_create() got unknown fields: {sorted(unknown)}")
    identifiers = customer_normalize_identifiers(data)
    _check_identifiers_free(identifiers, None)
    customer = Customer(source=source, **{**data, **identifiers})
    _record_sources(customer, data, source)
    _release_aliases(identifiers)
    return _save_validated(customer, identifiers)


@transaction.atomic
@transaction.atomic
def customer_update(
    *, customer: Customer, data: Mapping[str, Any], source: str = Source.ADMIN
) -> Customer:
    """Change the given fields; identifiers normalised, duplicates refused by field.

    Compared with the stored card (locked), not with `customer`: an admin form has already
    applied its values to its instance, and a copy loaded earlier may be stale. Only the changed
    fields are written, each recorded as coming from `source` (an admin edit by default); the
    caller's `customer` gets them too.
    """
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"customer_update() got unknown fields: {sorted(unknown)}")
    identifiers = customer_normalize_identifiers(data)
    _check_identifiers_free(identifiers, customer.pk)
    values = {**data, **identifiers}
    stored = Customer.objects.select_for_update().get(pk=customer.pk)
    changed = [field for field, value in values.items() if getattr(stored, field) != value]
    for field in changed:
        setattr(stored, field, values[field])
    _record_sources(stored, changed, source)
    _release_aliases({k: v for k, v in identifiers.items() if k in changed})
    _save_validated(stored, identifiers, update_fields=[*changed, "field_sources", "updated_at"])
    for field in [*changed, "field_sources", "updated_at"]:
        setattr(customer, field, getattr(stored, field))
    return customer


def consent_record(
    *,
    customer: Customer,
    channel: str,
    granted: bool,
    source: str,
    occurred_at: datetime | None = None,
    recorded_by: AbstractBaseUser | None = None,
    note: str = "",
) -> Consent:
    """Append a grant or withdrawal to the customer's consent history (never overwrites)."""
    consent = Consent(
        customer=customer,
        channel=channel,
        granted=granted,
        source=source,
        occurred_at=occurred_at or timezone.now(),
        recorded_by=recorded_by,
        note=note,
    )
    consent.full_clean()
    consent.save()
    return consent


def family_member_add(
    *, customer: Customer, name: str, relation: str, birth_date=None, sex: str = ""
) -> FamilyMember:
    """Add a relative to the customer's card."""
    member = FamilyMember(
        customer=customer, name=name, relation=relation, birth_date=birth_date, sex=sex
    )
    member.full_clean()
    member.save()
    return member


# --- Products named by till lines -----------------------------------------------------------------

_PRODUCT_LOOKUP_CHUNK = 1000


def _product_from_line(sku: str, name: str) -> Product:
    """An unsaved placeholder product for a till line's SKU, or ValidationError naming `sku`."""
    clean_sku = str(sku).strip()
    sku_length = Product._meta.get_field("sku").max_length
    if not clean_sku or len(clean_sku) > sku_length:
        raise ValidationError(
            {
                "sku": ValidationError(
                    _("A SKU has 1 to %(max)d characters; got “%(value)s”."),
                    code="invalid_sku",
                    params={"max": sku_length, "value": sku},
                )
            }
        )
    # The till's name is a placeholder until the catalogue completes the product, so a missing
    # or overlong one must not stop the purchase: fall back to the SKU, cut to the column.
    clean_name = " ".join(str(name or "").split()) or clean_sku
    clean_name = clean_name[: Product._meta.get_field("name").max_length]
    return Product(sku=clean_sku, name=clean_name, needs_review=True)


def product_get_or_create_from_line(*, sku: str, name: str) -> Product:
    """The product with this SKU; an unknown SKU becomes a new product marked needs_review.

    Safe against a concurrent writer creating the same SKU. A blank or overlong SKU raises
    ValidationError on `sku`; the name only fills a new product and never renames a known one.
    """
    placeholder = _product_from_line(sku, name)
    product, _created = Product.objects.get_or_create(
        sku=placeholder.sku,
        defaults={"name": placeholder.name, "needs_review": True},
    )
    return product


def products_ensure_from_lines(lines: Mapping[str, str]) -> dict[str, int]:
    """Product ids for till lines' {sku: name}, creating unknown SKUs marked needs_review.

    Keys of the result are the caller's SKUs as given. One query finds the known SKUs (per 1,000),
    one bulk INSERT ... ON CONFLICT DO NOTHING adds the rest, so a concurrent writer adding the same
    SKU is harmless; a final query reads the new ids. Known products are never changed. Raises
    ValidationError on `sku` (and creates nothing) if any SKU is blank or too long.
    """
    placeholders = {raw: _product_from_line(raw, name) for raw, name in lines.items()}
    wanted = {p.sku: p for p in placeholders.values()}

    def lookup(skus: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(skus), _PRODUCT_LOOKUP_CHUNK):
            chunk = skus[start : start + _PRODUCT_LOOKUP_CHUNK]
            found.update(Product.objects.filter(sku__in=chunk).values_list("sku", "id"))
        return found

    ids = lookup(list(wanted))
    missing = [sku for sku in wanted if sku not in ids]
    if missing:
        Product.objects.bulk_create(
            [wanted[sku] for sku in missing],
            batch_size=_PRODUCT_LOOKUP_CHUNK,
            ignore_conflicts=True,
        )
        ids.update(lookup(missing))
    return {raw: ids[placeholder.sku] for raw, placeholder in placeholders.items()}


def customer_identifiers_check(
    *, identifiers: Mapping[str, str | None], customer: Customer | None = None
) -> None:
    """Refuse normalised identifiers that belong to someone else: a ValidationError per field.

    For forms that report the clash before saving; customer_create/customer_update check again.
    """
    _check_identifiers_free(identifiers, customer.pk if customer is not None else None)


# --- Changes asked for by the channels (the API) --------------------------------------------------

# What a channel may change on a customer's card ("do_not_merge" is the CRM's own business).
CHANNEL_FIELDS = (*IDENTIFIER_FIELDS, *PERSONAL_FIELDS)


@dataclass
class ChannelUpdate:
    """What customer_update_from_channel did: the fields it changed and the ones it kept."""

    customer: Customer
    changed: list[str] = dataclasses.field(default_factory=list)
    # Fields left as they were because a more trusted source gave their current value.
    kept: list[str] = dataclasses.field(default_factory=list)


def _identifier_taken_code(error: ValidationError) -> ValidationError:
    """The same refusal with the code the API answers 409 for ("identifier_taken")."""
    if not hasattr(error, "error_dict"):
        return error
    return ValidationError(
        {
            name: [
                ValidationError(
                    e.message,
                    code="identifier_taken" if e.code == "duplicate" else e.code,
                    params=e.params,
                )
                for e in errors
            ]
            for name, errors in error.error_dict.items()
        }
    )


@transaction.atomic
def customer_update_from_channel(
    *, customer_id: int, data: Mapping[str, Any], source: str
) -> ChannelUpdate:
    """Change a customer's card as a channel (app, site, POS, contact centre) asks.

    A field keeps its value when a more trusted source gave it (admin > app/site/contact centre >
    POS, as in identity resolution); otherwise the channel's edit wins, even over an equally
    trusted source (it is a deliberate change, not a re-sent card). Identifiers are normalised;
    one another customer holds is refused under its field with code "identifier_taken" (never
    saying whose); a phone, email or card replaced keeps finding the customer, as after identity
    resolution. Atomic; raises Customer.DoesNotExist.
    """
    from .identity import source_rank

    unknown = set(data) - set(CHANNEL_FIELDS)
    if unknown:
        raise TypeError(f"customer_update_from_channel() got unknown fields: {sorted(unknown)}")
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    values = {**data, **customer_normalize_identifiers(data)}
    sources = customer.field_sources or {}
    result = ChannelUpdate(customer=customer)
    wanted: dict[str, Any] = {}
    for name, value in values.items():
        current = getattr(customer, name)
        if current == value or (current in (None, "") and value in (None, "")):
            continue
        if current not in (None, ""):
            # Values loaded before field sources were kept count as the customer's origin's.
            held_by = (sources.get(name) or [customer.source])[0]
            if source_rank(held_by) > source_rank(source):
                result.kept.append(name)
                continue
        wanted[name] = value
    identifiers = {k: v for k, v in wanted.items() if k in IDENTIFIER_FIELDS}
    try:
        _check_identifiers_free(identifiers, customer.pk)
        replaced = {k: getattr(customer, k) for k in identifiers if getattr(customer, k)}
        customer_update(customer=customer, data=wanted, source=source)
    except ValidationError as exc:
        raise _identifier_taken_code(exc) from None
    for column, old in replaced.items():
        IdentifierAlias.objects.get_or_create(
            kind=_ALIAS_KIND[column], value=old, defaults={"customer": customer}
        )
    result.changed = list(wanted)
    return result


@transaction.atomic
def family_member_remove(*, customer: Customer, member_id: int) -> bool:
    """Remove a relative from the customer's card; False when the card has no such relative."""
    deleted, _by_model = FamilyMember.objects.filter(customer=customer, pk=member_id).delete()
    return bool(deleted)
