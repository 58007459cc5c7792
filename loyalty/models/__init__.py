"""Loyalty: customer figures, statuses and RFM scores, the bonus ledger and discounts."""

from .bonuses import (
    AccrualRate,
    BonusAccount,
    BonusConsumption,
    BonusMovement,
    BonusProductRule,
    BonusRules,
    MovementKind,
)
from .discounts import CumulativeDiscountTier, PersonalDiscount
from .reference import BonusDiscountType
from .statuses import CustomerFigures, CustomerStatus, StatusChange, StatusRun, StatusSettings

__all__ = [
    "AccrualRate",
    "BonusAccount",
    "BonusConsumption",
    "BonusDiscountType",
    "BonusMovement",
    "BonusProductRule",
    "BonusRules",
    "CumulativeDiscountTier",
    "CustomerFigures",
    "CustomerStatus",
    "MovementKind",
    "PersonalDiscount",
    "StatusChange",
    "StatusRun",
    "StatusSettings",
]
