"""The loyalty app's steps of the customer merge (customers.merge.register_merge_step)."""

from customers.merge import register_merge_step
from customers.models import Customer

from .ledger import load_lots, open_books, write_books
from .models import BonusAccount, BonusMovement, CustomerFigures, StatusChange
from .receivers import queue_statuses_refresh


@register_merge_step("status_history")
def move_status_history(survivor: Customer, merged: Customer) -> int:
    """Move B's status history to A and recompute A from the combined purchases once the merge
    commits: the replay supersedes the rows (A's or B's) that the joint history no longer has."""
    moved = StatusChange.objects.filter(customer=merged).update(customer=survivor)
    CustomerFigures.objects.filter(customer=merged).delete()
    queue_statuses_refresh([survivor.pk])
    return moved


@register_merge_step("bonus_ledger")
def move_bonus_ledger(survivor: Customer, merged: Customer) -> int:
    """B's movements become A's, the two accounts add up, and A's debt (if any) is paid off
    from what B brought."""
    books = open_books([survivor.pk, merged.pk])
    kept, gone = books[survivor.pk], books[merged.pk]
    moved = BonusMovement.objects.filter(customer=merged).update(customer=survivor)
    BonusAccount.objects.filter(customer=merged).delete()
    kept.balance += gone.balance
    kept.pending += gone.pending
    kept.debt += gone.debt
    load_lots([kept])
    kept.settle()  # marks the book changed: the summed figures are written
    write_books([kept])
    return moved
