"""Reads of the loyalty app for the admin, the API and reports."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count

from .models import CustomerFigures, StatusChange
from .recompute.common import stored_as_of


def figures_as_of() -> dt.date | None:
    """The date every stored status and figure holds for (the last whole-base run's), or None
    before the first one."""
    return stored_as_of()


def status_counts() -> dict[str, int]:
    """Customers per stored status (one GROUP BY over the figures table); customers without a
    completed purchase have no row and are not counted here."""
    return dict(
        CustomerFigures.objects.order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )


def status_history(*, customer_id: int, include_superseded: bool = False):
    """A customer's status changes, newest first (those in effect unless asked otherwise)."""
    changes = StatusChange.objects.filter(customer_id=customer_id)
    if not include_superseded:
        changes = changes.filter(superseded_at__isnull=True)
    return changes.order_by("-effective_date", "-id")
