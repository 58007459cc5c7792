"""Timeline providers of the loyalty app (status changes, bonus movements)."""

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from django.conf import settings
from django.urls import reverse
from django.utils.formats import date_format, number_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _

from customers.models import Customer
from customers.timeline import TimelineEvent, register_timeline_provider

from .models import StatusChange
from .selectors import newest_bonus_movements

STATUS_EVENT = "status"


def _in_effect(customer: Customer, limit: int) -> list[StatusChange]:
    # The customer page prefetches the whole history for its history panel: reuse it rather
    # than query again.
    prefetched = getattr(customer, "_prefetched_objects_cache", {}).get("status_changes")
    if prefetched is not None:
        rows = [change for change in prefetched if change.superseded_at is None]
        rows.sort(key=lambda change: (change.effective_date, change.pk), reverse=True)
        return rows[:limit]
    return list(
        StatusChange.objects.filter(customer=customer, superseded_at__isnull=True).order_by(
            "-effective_date", "-id"
        )[:limit]
    )


def local_midnight(day: dt.date) -> dt.datetime:
    """The start of `day` in the chain's time zone (statuses change by whole days)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


@register_timeline_provider("status_changes")
def status_change_events(customer: Customer, limit: int) -> Iterator[TimelineEvent]:
    for change in _in_effect(customer, limit):
        if change.old_status:
            title = _("Status: %(old)s → %(new)s") % {
                "old": change.get_old_status_display(),
                "new": change.get_new_status_display(),
            }
        else:
            title = _("Status: %(new)s") % {"new": change.get_new_status_display()}
        yield TimelineEvent(
            at=local_midnight(change.effective_date), kind=STATUS_EVENT, title=title
        )


BONUS_EVENT = "bonus"


def signed_bonus(amount) -> str:
    """+8.10 for a credit, -45.00 for a debit (in the active language's number format)."""
    text = number_format(amount, 2)
    return f"+{text}" if amount > 0 else text


@register_timeline_provider("bonus_movements")
def bonus_movement_events(customer: Customer, limit: int) -> Iterator[TimelineEvent]:
    # The purchase and the poster joined; the customer page prefetched them (no query then).
    movements = newest_bonus_movements(customer, limit)
    for movement in movements:
        details = []
        if movement.purchase is not None:
            details.append(_("purchase %(id)s") % {"id": movement.purchase.external_id})
        if movement.campaign_ref:
            details.append(_("activity %(ref)s") % {"ref": movement.campaign_ref})
        if movement.reason:
            details.append(movement.reason)
        if movement.is_pending and movement.available_at is not None:
            details.append(
                _("available from %(date)s")
                % {"date": date_format(localtime(movement.available_at), "SHORT_DATE_FORMAT")}
            )
        if movement.created_by is not None:
            details.append(movement.created_by.get_username())
        yield TimelineEvent(
            at=movement.created_at,
            kind=BONUS_EVENT,
            title=_("Bonuses %(amount)s: %(kind)s")
            % {"amount": signed_bonus(movement.amount), "kind": movement.get_kind_display()},
            detail="; ".join(details),
            url=reverse("admin:loyalty_bonusmovement_change", args=[movement.pk]),
        )
