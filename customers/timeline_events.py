"""Timeline providers for what the customers app itself holds."""

from collections.abc import Iterator

from django.urls import NoReverseMatch, reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from .models import Customer, Purchase
from .timeline import TimelineEvent, register_timeline_provider


def _admin_url(obj) -> str:
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return ""


@register_timeline_provider("registration")
def registration_events(customer: Customer, limit: int) -> Iterator[TimelineEvent]:
    yield TimelineEvent(
        at=customer.created_at,
        kind="registration",
        title=_("Joined the customer base via %(source)s")
        % {"source": customer.get_source_display()},
    )


@register_timeline_provider("purchases")
def purchase_events(customer: Customer, limit: int) -> Iterator[TimelineEvent]:
    purchases = customer.purchases.select_related("store", "purchase_type").order_by(
        "-purchased_at", "-id"
    )[:limit]
    for purchase in purchases:
        title = _("Purchase %(id)s: %(total)s ₽") % {
            "id": purchase.external_id,
            "total": number_format(purchase.total, 2),
        }
        if purchase.status != Purchase.Status.COMPLETED:
            title += f" ({purchase.get_status_display()})"
        where = purchase.store.name if purchase.store else purchase.get_source_display()
        yield TimelineEvent(
            at=purchase.purchased_at,
            kind="purchase",
            title=title,
            detail=f"{purchase.purchase_type.name}, {where}",
            url=_admin_url(purchase),
        )


@register_timeline_provider("reservations")
def reservation_events(customer: Customer, limit: int) -> Iterator[TimelineEvent]:
    reservations = customer.reservations.select_related("store", "product").order_by(
        "-created_at", "-id"
    )[:limit]
    for reservation in reservations:
        yield TimelineEvent(
            at=reservation.created_at,
            kind="reservation",
            title=_("Reserved %(product)s") % {"product": reservation.product.name},
            detail=f"{reservation.store.name}, {reservation.get_status_display()}",
        )


@register_timeline_provider("consents")
def consent_events(customer: Customer, limit: int) -> Iterator[TimelineEvent]:
    for consent in customer.consents.order_by("-occurred_at", "-id")[:limit]:
        template = (
            _("Consent to %(channel)s given")
            if consent.granted
            else _("Consent to %(channel)s withdrawn")
        )
        yield TimelineEvent(
            at=consent.occurred_at,
            kind="consent",
            title=template % {"channel": consent.get_channel_display()},
            detail=consent.get_source_display(),
        )
