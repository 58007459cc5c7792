"""Timeline providers of the loyalty app (status changes)."""

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.translation import gettext as _

from customers.models import Customer
from customers.timeline import TimelineEvent, register_timeline_provider

from .models import StatusChange

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
