"""Loyalty in the admin: the status settings and recomputations, the statuses and figures on
the customer list and page, and loyalty's reference lists."""

from . import customer, references, statuses

__all__ = ["customer", "references", "statuses"]
