"""The loyalty app's steps of the customer merge (customers.merge.register_merge_step)."""

from customers.merge import register_merge_step
from customers.models import Customer

from .models import CustomerFigures, StatusChange
from .receivers import queue_statuses_refresh


@register_merge_step("status_history")
def move_status_history(survivor: Customer, merged: Customer) -> int:
    """Move B's status history to A and recompute A from the combined purchases once the merge
    commits: the replay supersedes the rows (A's or B's) that the joint history no longer has."""
    moved = StatusChange.objects.filter(customer=merged).update(customer=survivor)
    CustomerFigures.objects.filter(customer=merged).delete()
    queue_statuses_refresh([survivor.pk])
    return moved
