"""Signals the customer base sends for other apps to follow (customers imports none of them)."""

from django.dispatch import Signal

# Sent inside the transaction that changed purchases (created, updated, cancelled, returned,
# moved by a merge), with `customer_ids`: the customers whose figures and statuses follow from
# them. Receivers act on commit.
purchases_changed = Signal()
