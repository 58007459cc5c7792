"""Loyalty: customer figures, statuses and RFM scores; (later) the bonus ledger and discounts."""

from .reference import BonusDiscountType
from .statuses import CustomerFigures, CustomerStatus, StatusChange, StatusRun, StatusSettings

__all__ = [
    "BonusDiscountType",
    "CustomerFigures",
    "CustomerStatus",
    "StatusChange",
    "StatusRun",
    "StatusSettings",
]
