"""Reads of the customer base."""

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from pharmacrm.prepared import execute_prepared

from .identity import IDENTIFIER_FIELDS, identifier_owner
from .models import Channel, Consent, Customer, ExternalId, IdentifierAlias, ImportRun
from .normalize import normalize_card, normalize_email, normalize_phone


def consent_current_map(*, customer: Customer) -> dict[str, Consent]:
    """The latest consent row per channel for one customer."""
    current: dict[str, Consent] = {}
    for consent in customer.consents.order_by("channel", "-occurred_at", "-id"):
        current.setdefault(consent.channel, consent)
    return current


def customer_consent_granted(*, customer: Customer, channel: str) -> bool:
    """Whether the customer's current consent for the channel is a grant (no record = no)."""
    latest = (
        Consent.objects.filter(customer=customer, channel=channel)
        .order_by("-occurred_at", "-id")
        .values_list("granted", flat=True)
        .first()
    )
    return bool(latest)


def customers_with_consent(*, channel: str, queryset: QuerySet[Customer] | None = None) -> QuerySet:
    """Customers whose latest consent row for the channel is a grant."""
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    latest = (
        Consent.objects.filter(customer=OuterRef("pk"), channel=channel)
        .order_by("-occurred_at", "-id")
        .values("granted")[:1]
    )
    qs = queryset if queryset is not None else Customer.objects.all()
    return qs.annotate(_consent=Subquery(latest)).filter(_consent=True)


def import_run_summary(*, run: ImportRun, max_issues: int = 1000) -> str:
    """A plain-text report of an import run: counts, then every rejection and warning."""
    from django.utils.translation import gettext as _

    lines = [
        f"{run.file_name}: {run.get_status_display()}",
    ]
    if run.status == ImportRun.Status.FAILED:
        lines.append(_("Refused: %(error)s") % {"error": run.error})
        return "\n".join(lines)
    counts = {
        "records": run.records,
        "created": run.created,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "rejected": run.rejected,
        "c_created": run.customers_created,
        "c_matched": run.customers_matched,
        "c_merged": run.customers_merged,
        "suspicions": run.suspicions,
        "warnings": run.warnings,
    }
    if run.kind == ImportRun.Kind.CUSTOMERS:
        line = _(
            "rows: %(records)d read, %(created)d created a customer, %(updated)d updated one, "
            "%(unchanged)d changed nothing, %(rejected)d rejected; customers: %(c_created)d "
            "created, %(c_matched)d matched, %(c_merged)d merged, %(suspicions)d duplicate "
            "suspicions; %(warnings)d warnings"
        )
    else:
        line = _(
            "purchases: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, "
            "%(rejected)d rejected; customers: %(c_created)d created, %(c_matched)d matched, "
            "%(c_merged)d merged, %(suspicions)d duplicate suspicions; %(warnings)d warnings"
        )
    lines.append(line % counts)
    issues = run.issues.order_by("position", "id")
    for issue in issues[:max_issues]:
        if run.kind == ImportRun.Kind.CUSTOMERS:
            # A customer file is read in a spreadsheet: its rows are what people look up.
            where = _("row %(row)s") % {"row": issue.position} if issue.position else ""
            if issue.record_id:
                where += f" ({issue.record_id})"
        else:
            where = issue.record_id or (f"#{issue.position}" if issue.position else "")
        lines.append(f"  {issue.get_level_display()} {where} [{issue.field}]: {issue.message}")
    total = issues.count()
    if total > max_issues:
        lines.append(_("  … and %(more)d more") % {"more": total - max_issues})
    return "\n".join(lines)


def customer_find(*, kind: str, value: str) -> Customer | None:
    """The customer an identifier names, or None (see customer_find_id)."""
    pk = customer_find_id(kind=kind, value=value)
    return Customer.objects.filter(pk=pk).first() if pk is not None else None


def customer_find_id(*, kind: str, value: str) -> int | None:
    """The id of the customer an identifier names, or None: `kind` is card, phone or email (any
    notation; old identifiers of merged customers find the survivor) or external_id as
    "SYSTEM:ID". Raises ValidationError naming `kind` for a malformed identifier."""
    if kind == "external_id":
        system, external_id = _external_id(value)
        return (
            ExternalId.objects.filter(system=system, external_id=external_id)
            .values_list("customer_id", flat=True)
            .first()
        )
    canonical = _canonical(kind, value)
    return identifier_owner(kind, canonical) if canonical else None


def customer_find_values(*, kind: str, value: str, fields: Sequence[str]) -> dict | None:
    """`customer_find_id`'s customer as a `.values(*fields)` row, or None. One query when the
    identifier is on a customer's card (the usual case); an old identifier of a merged customer
    or an external id costs a second one."""
    if kind == "external_id":
        pk = customer_find_id(kind=kind, value=value)
    else:
        canonical = _canonical(kind, value)
        if not canonical:
            return None
        row = _card_holder_row(kind, canonical, fields)
        if row is not None:
            return row
        pk = (
            IdentifierAlias.objects.filter(kind=kind, value=canonical)
            .values_list("customer_id", flat=True)
            .first()
        )
    if pk is None:
        return None
    return Customer.objects.filter(pk=pk).values(*fields).first()


def _card_holder_row(kind: str, canonical: str, fields: Sequence[str]) -> dict | None:
    """The customer whose card holds this identifier, as a `.values(*fields)` row."""
    if connection.vendor == "postgresql":
        # Plain SQL: the hottest read of the API, and building it through the ORM cost more
        # CPU than running it. psycopg2 gives each column's Python type as .values() does.
        # LOWER(email) is what the unique index holds: an exact match would scan the table.
        column = Customer._meta.get_field(IDENTIFIER_FIELDS[kind]).column
        where = f"LOWER({column}) = %s" if kind == "email" else f"{column} = %s"
        columns = ", ".join(Customer._meta.get_field(name).column for name in fields)
        with connection.cursor() as cursor:
            execute_prepared(
                cursor,
                f"SELECT {columns} FROM {Customer._meta.db_table} WHERE {where} LIMIT 1",
                [canonical.lower() if kind == "email" else canonical],
            )
            found = cursor.fetchone()
        return dict(zip(fields, found, strict=True)) if found else None
    if kind == "email":
        holders = Customer.objects.annotate(_email=Lower("email")).filter(_email=canonical.lower())
    else:
        holders = Customer.objects.filter(**{IDENTIFIER_FIELDS[kind]: canonical})
    # [:1], not first(): the identifier is unique, no ORDER BY needed.
    rows = list(holders.values(*fields)[:1])
    return rows[0] if rows else None


def _external_id(value: str) -> tuple[str, str]:
    system, _sep, external_id = value.partition(":")
    if not system or not external_id.strip():
        raise ValidationError(
            {"external_id": _("Give the external id as SYSTEM:ID, e.g. app:12345.")},
            code="invalid",
        )
    return system, external_id.strip()


_NORMALIZE = {"card": normalize_card, "phone": normalize_phone, "email": normalize_email}


def _canonical(kind: str, value: str) -> str | None:
    try:
        return _NORMALIZE[kind](value)
    except ValidationError as error:
        raise ValidationError({kind: error.messages}, code="invalid") from None
