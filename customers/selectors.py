"""Reads of the customer base."""

from django.db.models import OuterRef, QuerySet, Subquery

from .models import Channel, Consent, Customer


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
