"""The unified customer base: one record per person, whatever channel they came through."""

from .base import MONEY, Channel, PurchaseType, ReferenceList, Sex, Source
from .catalogue import Product, Store
from .people import Consent, Customer, ExternalId, FamilyMember
from .purchases import Purchase, PurchaseLine, Reservation

__all__ = [
    "MONEY",
    "Channel",
    "Consent",
    "Customer",
    "ExternalId",
    "FamilyMember",
    "Product",
    "Purchase",
    "PurchaseLine",
    "PurchaseType",
    "ReferenceList",
    "Reservation",
    "Sex",
    "Source",
    "Store",
]
