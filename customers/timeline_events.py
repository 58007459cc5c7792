"""Timeline providers for what the customers app itself holds."""

from collections.abc import Iterator

from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from .models import Customer, DuplicateSuspicion, MergeRecord, Purchase
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


@register_timeline_provider("merges")
def merge_events(customer: Customer, limit: int) -> Iterator[TimelineEvent]:
    for record in MergeRecord.objects.filter(survivor=customer).select_related("merged_by")[:limit]:
        identifiers = ", ".join(
            value
            for value in (record.merged_phone, record.merged_email, record.merged_card_number)
            if value
        )
        title = _("Merged with customer #%(id)s") % {"id": record.merged_customer_id}
        if identifiers:
            title += f" ({identifiers})"
        detail = record.get_reason_display()
        if record.merged_by:
            detail += f", {record.merged_by.get_username()}"
        yield TimelineEvent(
            at=record.created_at, kind="merge", title=title, detail=detail, url=_admin_url(record)
        )


SUSPICION_EVENT = "duplicate_suspicion"


@register_timeline_provider("duplicate_suspicions")
def duplicate_suspicion_events(customer: Customer, limit: int) -> Iterator[TimelineEvent]:
    suspicions = DuplicateSuspicion.objects.filter(
        Q(customer=customer) | Q(other=customer)
    ).order_by("-created_at", "-id")[:limit]
    for suspicion in suspicions:
        other_id = (
            suspicion.other_id if suspicion.customer_id == customer.pk else suspicion.customer_id
        )
        if other_id == customer.pk:
            # Closed by merging the pair: the other customer is this one now.
            title = _("Possible duplicate found (shares %(shared)s)")
        else:
            title = _("Possible duplicate: customer #%(id)s (shares %(shared)s)")
        yield TimelineEvent(
            at=suspicion.created_at,
            kind=SUSPICION_EVENT,
            title=title % {"id": other_id, "shared": suspicion.shared},
            detail=f"{suspicion.reason}; {suspicion.get_status_display()}",
            url=_admin_url(suspicion),
        )
