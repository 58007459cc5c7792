"""What the loyalty app does when the customer base changes."""

from collections.abc import Iterable

from django.db import transaction
from django.dispatch import receiver

from customers.signals import purchases_changed

# Touched customers per task: big imports fan out in chunks, not one task per customer.
REFRESH_CHUNK = 5000


def queue_statuses_refresh(customer_ids: Iterable[int]) -> None:
    """Queue the recomputation of these customers once the current transaction commits."""
    ids = sorted({int(i) for i in customer_ids if i is not None})
    if not ids:
        return

    def send() -> None:
        from .tasks import customer_statuses_refresh_task

        for start in range(0, len(ids), REFRESH_CHUNK):
            customer_statuses_refresh_task.delay(ids[start : start + REFRESH_CHUNK])

    transaction.on_commit(send)


@receiver(purchases_changed, dispatch_uid="loyalty.statuses_refresh")
def _purchases_changed(sender, customer_ids: Iterable[int], **kwargs) -> None:
    queue_statuses_refresh(customer_ids)
