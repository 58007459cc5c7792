"""Loyalty in the admin: the status settings and recomputations, the statuses, figures,
discount and bonuses on the customer list and page, the bonus rules and discounts, the bonus
ledger and adjustments, and loyalty's reference lists."""

from . import bonus_rules, customer, ledger, references, statuses

__all__ = ["bonus_rules", "customer", "ledger", "references", "statuses"]
