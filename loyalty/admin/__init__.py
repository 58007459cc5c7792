"""Loyalty in the admin: the status settings and recomputations, the statuses, figures and
discount on the customer list and page, the bonus rules and discounts, and loyalty's reference
lists."""

from . import bonus_rules, customer, references, statuses

__all__ = ["bonus_rules", "customer", "references", "statuses"]
